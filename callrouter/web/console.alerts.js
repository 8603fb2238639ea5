/* Telling staff a call rings when they are not looking at the popup: a short ring tone made
 * with the Web Audio API (no audio file), repeated while a call rings, and a browser
 * notification while the tab is in the background. The browser asks for the notification
 * permission only when the staff member presses the button for it (never on load). */
import {$, fmtPhone, h, t} from './console.util.js';

const SOUND_KEY = 'callrouter.sound'; // "off" mutes the ring in this browser
const RING_EVERY_MS = 4000;

const A = {
  audio: null, // the AudioContext, made on the first gesture (browsers start it muted before)
  ringTimer: null,
  notes: new Map(), // call id -> the Notification shown for it
};

const soundOn = () => localStorage.getItem(SOUND_KEY) !== 'off';

function audioContext() {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return null;
  if (!A.audio) A.audio = new Ctx();
  return A.audio;
}

/** One ring: two short beeps of a two-tone chord, about a second in all. */
function tone() {
  const ctx = audioContext();
  if (!ctx) return;
  if (ctx.state === 'suspended' && ctx.resume) ctx.resume().catch(() => {});
  const start = ctx.currentTime + 0.02;
  const gain = ctx.createGain();
  gain.gain.setValueAtTime(0, start);
  gain.connect(ctx.destination);
  for (const [on, off] of [[0, 0.4], [0.6, 1.0]]) {
    gain.gain.setValueAtTime(0, start + on);
    gain.gain.linearRampToValueAtTime(0.18, start + on + 0.02);
    gain.gain.setValueAtTime(0.18, start + off - 0.03);
    gain.gain.linearRampToValueAtTime(0, start + off);
  }
  for (const freq of [440, 480]) {
    const osc = ctx.createOscillator();
    osc.type = 'sine';
    osc.frequency.setValueAtTime(freq, start);
    osc.connect(gain);
    osc.start(start);
    osc.stop(start + 1.05);
  }
}

const inBackground = () => document.hidden || !document.hasFocus();

function notify(call) {
  if (!('Notification' in window) || Notification.permission !== 'granted' || !inBackground()) return;
  const fields = (call.user && call.user.fields) || [];
  const name = (fields.find((f) => f.key === 'full_name') || {}).value;
  const who = name || (call.user ? t('popup.knownUser') : t('popup.unknownCaller'));
  try {
    const note = new Notification(t(call.direction === 'out' ? 'popup.outgoing' : 'notify.title'), {
      body: `${fmtPhone(call.phone)} · ${who}`,
      tag: `call-${call.id}`,
      renotify: true,
    });
    note.onclick = () => {
      window.focus();
      note.close();
    };
    A.notes.set(call.id, note);
  } catch {
    /* a browser that only notifies from a service worker: the popup and the sound remain */
  }
}

/** A call started ringing for this staff member. */
export function ringing(call) {
  notify(call);
  if (!soundOn()) return;
  tone();
  if (!A.ringTimer) A.ringTimer = setInterval(tone, RING_EVERY_MS);
}

/** The live calls changed: the ring stops with the last ringing call, notifications of calls
 * no longer ringing go away. */
export function callsChanged(calls) {
  const ringingIds = new Set([...calls.values()].filter((c) => c.state === 'ringing').map((c) => c.id));
  if (!ringingIds.size && A.ringTimer) {
    clearInterval(A.ringTimer);
    A.ringTimer = null;
  }
  for (const [id, note] of A.notes) {
    if (!ringingIds.has(id)) {
      note.close();
      A.notes.delete(id);
    }
  }
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** A bell icon, struck through when muted. */
function bell(muted) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'icon');
  svg.setAttribute('aria-hidden', 'true');
  const paths = ['M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9', 'M13.73 21a2 2 0 0 1-3.46 0'];
  if (muted) paths.push('M3 3l18 18');
  for (const d of paths) {
    const path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

function renderControls() {
  const sound = $('sound-toggle');
  sound.setAttribute('aria-pressed', String(soundOn()));
  sound.replaceChildren(bell(!soundOn()), h('span', null, t(soundOn() ? 'alerts.soundOn' : 'alerts.soundOff')));
  sound.title = t('alerts.soundTitle');
  const button = $('notify-permission');
  const state = $('notify-state');
  const supported = 'Notification' in window;
  const permission = supported ? Notification.permission : 'unsupported';
  button.hidden = permission !== 'default';
  state.hidden = permission !== 'denied';
  state.textContent = permission === 'denied' ? t('alerts.blocked') : '';
  state.title = t('alerts.blockedHint');
}

export function init() {
  renderControls();
  $('notify-permission').addEventListener('click', async () => {
    try {
      await Notification.requestPermission();
    } catch {
      /* an old browser's callback form: the state below says what came of it */
    }
    renderControls();
  });
  $('sound-toggle').addEventListener('click', () => {
    localStorage.setItem(SOUND_KEY, soundOn() ? 'off' : 'on');
    if (!soundOn() && A.ringTimer) {
      clearInterval(A.ringTimer);
      A.ringTimer = null;
    }
    renderControls();
  });
  // Browsers start audio muted until the page is used: the first gesture makes it ready.
  const unlock = () => {
    const ctx = audioContext();
    if (ctx && ctx.state === 'suspended' && ctx.resume) ctx.resume().catch(() => {});
    window.removeEventListener('pointerdown', unlock);
    window.removeEventListener('keydown', unlock);
  };
  window.addEventListener('pointerdown', unlock);
  window.addEventListener('keydown', unlock);
}
