/* The staff console of callrouter: plain JavaScript modules, no build step.
 *
 * Signed in by the session cookie (`/login`), or by a staff token kept in localStorage (the
 * token box at `/?signin=token`), it listens to the live events of `GET /api/v1/events` and
 * drives the JSON API of API.md:
 *   - incoming-call popups (R5), with a sound and a browser notification (console.alerts.js),
 *     and what to do once the call is answered (R6–R10);
 *   - the case page with its messages, recordings, status, replies and notes;
 *   - calling the user from a case (R18–R20), with a notice to get back to the case;
 *   - the missed-call worklist and my call log (console.worklist.js).
 * Views are addressed by the URL hash: #/cases, #/case/ID, #/user/ID, #/users, #/new-case/CALL,
 * #/missed, #/log. Every string comes from console.strings.js (Russian and English).
 */
import {
  $, ApiError, api, caseIcon, configureApi, errorBox, errorText, fmtDuration, fmtPhone, fmtTime, h,
  loadJson, phoneIcon, STATUSES, statusBadge, statusLabel, t, toast, userName,
} from './console.util.js';
import * as alerts from './console.alerts.js';
import * as worklist from './console.worklist.js';

const TOKEN_KEY = 'callrouter.token';
const OPENED_KEY = 'callrouter.openedCalls'; // calls whose profile was opened automatically
const DRAFTS_KEY = 'callrouter.drafts'; // what was typed per call, to come back to the form
const DRAFT_DELAY_MS = 600;
const MAX_BACKOFF_S = 30;
const NAMES_REFRESH_MS = 30000; // an unknown staff id reads the directory again, at most this often

const S = {
  token: localStorage.getItem(TOKEN_KEY),
  session: false, // signed in by the session cookie (no token)
  me: null, // GET /api/v1/me
  names: new Map(), // staff id -> full name (GET /api/v1/directory/staff)
  namesReadAt: -Infinity,
  started: false,
  ws: null,
  wsTimer: null,
  countdown: null,
  attempts: 0,
  calls: new Map(), // String(call id) -> live call the staff member rings for / talks in
  callCase: new Map(), // String(call id) -> id of the case created from it here
  dismissed: new Set(),
  cornerShown: new Set(), // keys of the corner's cards on screen
  dial: null, // the call from a case: {caseId, callId, externalId, phase, error, el, ...}
  view: null, // the current view's state
  users: new Map(), // user id -> user (names for popups)
  draftTimers: new Map(),
};
let routeSeq = 0;

const signedIn = () => !!(S.token || S.session);

configureApi({
  token: () => S.token,
  unauthorized: () => {
    if (S.token) signOut(t('signin.expired'));
    else if (S.session) toLogin();
  },
});

/** A staff member's name from the directory; "#id" until it is known. */
function staffName(id) {
  if (id == null) return t('staff.unassigned');
  const name = S.names.get(id);
  if (name) return name;
  loadNames(false);
  return `#${id}`;
}

async function loadNames(force) {
  const now = performance.now();
  if (!signedIn() || (!force && now - S.namesReadAt < NAMES_REFRESH_MS)) return;
  S.namesReadAt = now;
  const names = new Map();
  try {
    for (let offset = 0; ; offset += 500) {
      const page = await api('GET', `/api/v1/directory/staff?limit=500&offset=${offset}`);
      for (const staff of page.items) names.set(staff.id, staff.full_name);
      if (!page.items.length || offset + page.items.length >= page.total) break;
    }
  } catch {
    return; // no directory here (an older service): ids it is
  }
  const changed = names.size !== S.names.size || [...names].some(([id, n]) => S.names.get(id) !== n);
  S.names = names;
  if (changed && S.started) namesChanged();
}

/** Names arrived: what shows them is drawn again. */
function namesChanged() {
  const v = S.view;
  if (!v) return;
  if (v.name === 'case' && v.case) { renderCaseHeader(v); rerenderMessages(v); }
  else if (v.name === 'cases') refreshCases(v);
  else if (v.name === 'user' && v.cases) renderProfileCases(v);
  else if (worklist.owns(v)) worklist.refresh(v);
}

// ---- sign-in, sign-out -----------------------------------------------------------------

function showSignedIn(on) {
  document.body.classList.toggle('signed-out', !on);
  document.body.classList.toggle('signed-in', on);
}

function toLogin() {
  const next = location.pathname + location.search + location.hash;
  location.replace(`/login?next=${encodeURIComponent(next)}`);
}

async function signIn(event) {
  event.preventDefault();
  const token = $('signin-token').value.trim();
  const errEl = $('signin-error');
  errEl.hidden = true;
  if (!token) return;
  $('signin-submit').disabled = true;
  try {
    await api('GET', '/api/v1/cases?limit=1', undefined, token);
    // Live events need a staff token: the admin token is refused there.
    const opened = await probeEvents(token);
    if (!opened) throw new ApiError(403, 'not_staff', t('signin.notStaff'));
    S.token = token;
    localStorage.setItem(TOKEN_KEY, token);
    $('signin-token').value = '';
    start();
  } catch (err) {
    errEl.textContent = err.status === 401 ? t('signin.badToken') : errorText(err);
    errEl.hidden = false;
  } finally {
    $('signin-submit').disabled = false;
  }
}

function probeEvents(token) {
  return new Promise((resolve) => {
    const ws = new WebSocket(eventsUrl(token));
    const timer = setTimeout(() => { ws.close(); resolve(false); }, 10000);
    ws.onopen = () => { clearTimeout(timer); ws.close(); resolve(true); };
    ws.onclose = () => { clearTimeout(timer); resolve(false); };
  });
}

/** Sign out: the session ends on the service, a kept token is forgotten. */
async function signOutClicked() {
  const session = S.session;
  try {
    await fetch('/api/v1/auth/logout', {method: 'POST', credentials: 'same-origin',
      headers: {'X-Requested-With': 'callrouter', Accept: 'application/json'}});
  } catch {
    /* signed out here all the same */
  }
  signOut();
  if (session) toLogin();
}

function signOut(reason) {
  const ws = S.ws;
  S.ws = null;
  if (ws) ws.close(1000, 'signed out');
  clearTimeout(S.wsTimer);
  clearInterval(S.countdown);
  S.token = null;
  S.session = false;
  S.me = null;
  S.started = false;
  localStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(OPENED_KEY);
  S.calls.clear();
  S.callCase.clear();
  S.dial = null;
  S.view = null;
  S.users.clear();
  $('view').replaceChildren();
  renderCorner();
  alerts.callsChanged(S.calls);
  setConn('offline');
  showSignedIn(false);
  const errEl = $('signin-error');
  errEl.textContent = reason || '';
  errEl.hidden = !reason;
  $('signin-token').focus();
}

async function start() {
  showSignedIn(true);
  S.started = true;
  await Promise.all([loadMe(), loadNames(true)]);
  if (!signedIn()) return;
  if (S.me && S.me.staff_id == null) {
    // The admin without a staff profile: calls are offered to staff members only.
    $('admin-banner').hidden = false;
  } else {
    connect();
  }
  worklist.start();
  if (!location.hash || location.hash === '#' || location.hash === '#/') location.hash = '#/cases';
  else route();
}

async function loadMe() {
  try {
    S.me = await api('GET', '/api/v1/me');
  } catch {
    S.me = null; // an older service without /me: the name stays unknown
  }
  const who = $('me');
  who.hidden = !S.me;
  if (S.me) {
    const name = S.me.full_name || S.me.email || t('me.admin');
    $('me-name').textContent = name;
    who.querySelector('.me-avatar').textContent = name.trim().charAt(0).toUpperCase();
    $('me-role').textContent = S.me.role === 'admin' ? t('me.roleAdmin') : '';
    $('me-role').hidden = S.me.role !== 'admin';
    who.title = S.me.email || '';
  }
}

/** The first page load: a kept token, the session cookie, or the way to sign in. */
async function boot() {
  if (S.token) {
    start();
    return;
  }
  const wantsToken = new URLSearchParams(location.search).get('signin') === 'token';
  if (!wantsToken) {
    let resp = null;
    try {
      resp = await fetch('/api/v1/me', {credentials: 'same-origin',
        headers: {Accept: 'application/json', 'X-Requested-With': 'callrouter'}});
    } catch {
      resp = null;
    }
    if (resp && resp.ok) {
      S.session = true;
      start();
      return;
    }
    if (resp && resp.status === 401) {
      toLogin();
      return;
    }
  }
  showSignedIn(false); // the token box: asked for, or a service without sessions
}

// ---- live events -------------------------------------------------------------------------

function eventsUrl(token) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const query = token ? `?token=${encodeURIComponent(token)}` : ''; // else the cookie
  return `${scheme}://${location.host}/api/v1/events${query}`;
}

function setConn(state, text) {
  const el = $('conn-state');
  el.dataset.state = state;
  $('conn-text').textContent = text || t(`conn.${state}`);
}

function connect() {
  clearTimeout(S.wsTimer);
  clearInterval(S.countdown);
  if (!signedIn()) return;
  setConn('connecting');
  const ws = new WebSocket(eventsUrl(S.token));
  ws.binaryType = 'arraybuffer';
  S.ws = ws;
  let opened = false;
  ws.onopen = () => {
    if (S.ws !== ws) return;
    opened = true;
    S.attempts = 0;
    setConn('connected');
    connected();
  };
  ws.onmessage = (msg) => {
    if (S.ws !== ws) return;
    const text = typeof msg.data === 'string' ? msg.data : new TextDecoder().decode(msg.data);
    let event;
    try {
      event = JSON.parse(text);
    } catch {
      return;
    }
    try {
      handleEvent(event);
    } catch (err) {
      console.error('live event', event, err);
    }
  };
  ws.onclose = () => {
    if (S.ws !== ws) return;
    S.ws = null;
    if (!opened) api('GET', '/api/v1/cases?limit=1').catch(() => {}); // signs out on 401
    if (signedIn()) reconnectLater();
  };
}

function reconnectLater() {
  const base = Math.min(MAX_BACKOFF_S, 2 ** S.attempts);
  S.attempts += 1;
  const delay = base * (0.75 + Math.random() * 0.5);
  let left = Math.ceil(delay);
  setConn('offline', t('conn.retrying', {s: left}));
  S.countdown = setInterval(() => {
    left -= 1;
    if (left > 0) setConn('offline', t('conn.retrying', {s: left}));
  }, 1000);
  S.wsTimer = setTimeout(connect, delay * 1000);
}

/** A fresh connection is sent the current calls again: forget what may have ended meanwhile. */
function connected() {
  S.calls.clear();
  callsChanged();
  const dial = S.dial;
  if (dial && dial.callId && (dial.phase === 'dialing' || dial.phase === 'connected')) {
    api('GET', `/api/v1/calls/${dial.callId}`).then((call) => {
      if (S.dial === dial && call.state === 'ended') dialEnded(dial);
    }).catch(() => {});
  }
}

function handleEvent(ev) {
  const id = ev.call_session_id != null ? String(ev.call_session_id) : null;
  switch (ev.type) {
    case 'call.ringing': {
      const prev = S.calls.get(id);
      const call = {
        ...(prev || {}), id, state: 'ringing', direction: ev.direction, phone: ev.phone,
        user: ev.user || null, userId: ev.user ? ev.user.id : null,
      };
      S.calls.set(id, call);
      S.dismissed.delete(id);
      callsChanged();
      if (!prev || prev.state !== 'ringing') alerts.ringing(call);
      break;
    }
    case 'call.offer_ended':
      if (S.calls.get(id)?.state === 'ringing') {
        S.calls.delete(id);
        callsChanged();
      }
      break;
    case 'call.answered': {
      const prev = S.calls.get(id) || {};
      const call = {
        ...prev, id, state: 'talking', direction: ev.direction || prev.direction,
        phone: ev.phone || prev.phone, userId: ev.user_id ?? prev.userId ?? null, user: prev.user || null,
      };
      S.calls.set(id, call);
      callsChanged();
      answered(call);
      break;
    }
    case 'call.dialing':
    case 'call.connected':
      dialEvent(ev, ev.type === 'call.dialing' ? 'dialing' : 'connected');
      break;
    case 'call.ended':
      S.calls.delete(id);
      if (S.dial && S.dial.callId != null && String(S.dial.callId) === id) dialEnded(S.dial);
      callsChanged();
      callEnded(id, ev.case_ids || []);
      break;
    case 'call.decided':
      callDecided(id, ev.case_ids || []);
      worklist.changed(S.view);
      break;
    case 'case.updated':
      caseUpdated(ev.case_id);
      worklist.changed(S.view);
      break;
    default:
      break;
  }
}

/** R6: the staff member picked up: a known caller's profile opens, once per call. */
function answered(call) {
  const opened = new Set(loadJson(sessionStorage, OPENED_KEY, []));
  if (opened.has(call.id)) return;
  opened.add(call.id);
  sessionStorage.setItem(OPENED_KEY, JSON.stringify([...opened].slice(-50)));
  if (call.userId != null) go(`#/user/${call.userId}?call=${call.id}`);
}

/** The call is over; its cases follow once it is settled (`call.decided`). */
function callEnded(id, caseIds) {
  const v = S.view;
  if (v && v.name === 'new-case' && v.callId === id) formCallEnded(v, caseIds);
}

/** R11–R17 have run for the call: its cases exist now, wherever they are shown. */
function callDecided(id, caseIds) {
  const v = S.view;
  if (!v) return;
  if (v.name === 'case') refreshCase(v);
  else if (v.name === 'new-case' && v.callId === id) formCasesReady(v, caseIds);
  else if (v.name === 'cases') refreshCases(v);
  else if (v.name === 'user') refreshProfileCases(v);
}

function caseUpdated(caseId) {
  const v = S.view;
  if (!v) return;
  if (v.name === 'case' && v.id === caseId) refreshCase(v);
  else if (v.name === 'cases') refreshCases(v);
  else if (v.name === 'user') refreshProfileCases(v);
}

/** Everything that shows live calls follows a change of them. */
function callsChanged() {
  renderCorner();
  alerts.callsChanged(S.calls);
  const v = S.view;
  if (v && v.name === 'user') renderProfileCall(v);
  if (v && v.name === 'case') renderAttach(v);
  if (v && v.name === 'new-case') renderFormCaller(v);
}

// ---- the top-right corner: popups and the notice ----------------------------------------

function renderCorner() {
  const corner = $('corner');
  const items = [];
  const notice = dialNotice();
  if (notice) items.push(notice);
  for (const call of S.calls.values()) {
    if (!S.dismissed.has(call.id)) items.push(popup(call));
  }
  // Slide in only what is new: a popup redrawn for a new state stays put.
  const shown = new Set();
  for (const el of items) {
    const key = el.dataset.key;
    shown.add(key);
    if (!S.cornerShown.has(key)) el.classList.add('enter');
  }
  S.cornerShown = shown;
  corner.replaceChildren(...items);
  // The page makes room for the corner instead of hiding under it.
  document.body.classList.toggle('corner-open', items.length > 0);
  const ringing = [...S.calls.values()].some((c) => c.state === 'ringing');
  document.title = ringing ? t('title.ringing') : t('title');
}

function popup(call) {
  const talking = call.state === 'talking';
  const title = t(talking ? 'popup.inCall' : call.direction === 'out' ? 'popup.outgoing' : 'popup.incoming');
  const caseId = S.callCase.get(call.id);
  const body = [];
  if (call.user && call.user.fields) {
    const rows = call.user.fields.filter((f) => f.value != null && f.value !== '');
    body.push(h('dl', {class: 'popup-fields', 'data-testid': 'popup-fields'},
      rows.map((f) => [h('dt', null, f.title), h('dd', {dataset: {key: f.key}}, String(f.value))])));
    if (!rows.length) body.push(h('p', {class: 'popup-caller muted'}, t('popup.knownUser')));
  } else if (call.userId != null) {
    const known = S.users.get(call.userId);
    body.push(h('p', {class: 'popup-caller', 'data-testid': 'popup-caller'}, known ? userName(known) : t('popup.knownUser')));
    if (!known) getUser(call.userId).then(() => renderCorner()).catch(() => {});
  } else {
    body.push(h('p', {class: 'popup-caller unknown', 'data-testid': 'popup-unknown'}, t('popup.unknownCaller')));
  }
  const actions = [];
  if (talking) {
    if (caseId != null) {
      actions.push(h('a', {class: 'btn btn-small', href: `#/case/${caseId}`, 'data-testid': 'popup-open-case'}, t('popup.openCase', {id: caseId})));
    } else if (call.userId != null) {
      actions.push(
        h('a', {class: 'btn btn-small', href: `#/user/${call.userId}?call=${call.id}`, 'data-testid': 'popup-open-profile'}, t('popup.openProfile')),
        h('a', {class: 'btn btn-small btn-primary', href: `#/new-case/${call.id}`, 'data-testid': 'popup-create-case'}, t('call.createCase')));
    } else {
      actions.push(
        h('a', {class: 'btn btn-small', href: `#/users?link=${call.id}`, 'data-testid': 'popup-find-user'}, t('popup.findUser')),
        h('a', {class: 'btn btn-small btn-primary', href: `#/new-case/${call.id}`, 'data-testid': 'popup-create-case'}, t('call.createCase')));
    }
  }
  return h('section', {
    class: `popup ${talking ? 'talking' : 'ringing'}`, 'data-testid': 'call-popup',
    dataset: {callId: call.id, state: call.state, key: `call-${call.id}`}, role: 'dialog', 'aria-label': title,
  },
  h('header', {class: 'popup-head'},
    h('span', {class: 'popup-icon'}, phoneIcon()),
    h('span', {class: 'popup-title', 'data-testid': 'popup-title'}, title),
    h('button', {class: 'popup-close', type: 'button', title: t('popup.hide'), 'aria-label': t('popup.hide'),
      onclick: () => { S.dismissed.add(call.id); renderCorner(); }}, '×')),
  h('div', {class: 'popup-phone', 'data-testid': 'popup-phone', dataset: {phone: call.phone || ''}}, fmtPhone(call.phone)),
  body,
  actions.length ? h('div', {class: 'popup-actions'}, actions) : null);
}

/** R18: away from the case while its call lasts, a way back to it. */
function dialNotice() {
  const d = S.dial;
  if (!d || !['starting', 'dialing', 'connected'].includes(d.phase)) return null;
  const v = S.view;
  if (v && v.name === 'case' && v.id === d.caseId) return null;
  const state = t(d.phase === 'connected' ? 'dial.connected' : 'dial.dialing');
  return h('section', {class: 'popup notice', 'data-testid': 'dial-notice', id: 'dial-notice', role: 'status',
    dataset: {key: `dial-${d.caseId}`}},
  h('header', {class: 'popup-head'},
    h('span', {class: 'popup-icon'}, phoneIcon()),
    h('span', {class: 'popup-title'}, t('notice.title', {state, id: d.caseId}))),
  h('p', {class: 'muted small'}, d.phone
    ? t('notice.withPhone', {phone: fmtPhone(d.phone), id: d.caseId}) : t('notice.noPhone', {id: d.caseId})),
  h('div', {class: 'popup-actions'},
    h('a', {class: 'btn btn-small btn-primary', id: 'dial-notice-link', 'data-testid': 'dial-notice-link',
      href: `#/case/${d.caseId}`}, t('notice.back'))));
}

// ---- routing ---------------------------------------------------------------------------

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const qAt = raw.indexOf('?');
  const path = qAt >= 0 ? raw.slice(0, qAt) : raw;
  const q = new URLSearchParams(qAt >= 0 ? raw.slice(qAt + 1) : '');
  return {parts: path.split('/').filter(Boolean), q};
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function mount(...nodes) {
  $('view').replaceChildren(...nodes);
  window.scrollTo(0, 0);
}

const NAV_OF = {case: 'cases', user: 'users', 'new-case': null};

function route() {
  if (!signedIn() || !S.started) return;
  const {parts, q} = parseHash();
  const seq = ++routeSeq;
  S.view = null;
  const nav = parts[0] in NAV_OF ? NAV_OF[parts[0]] : parts[0];
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === nav);
  const id = Number(parts[1]);
  switch (parts[0]) {
    case 'case': showCase(id, q, seq); break;
    case 'user': showUser(id, q, seq); break;
    case 'users': showUsers(q, seq); break;
    case 'new-case': showCaseForm(parts[1], seq); break;
    case 'missed':
    case 'log':
      S.view = worklist.show(parts[0], q, ctx);
      break;
    default: showCases(q, seq); break;
  }
  renderCorner();
}

const current = (seq) => seq === routeSeq;

/** What the worklist views use of the console. */
const ctx = {
  mount,
  staffName,
  isView: (v) => S.view === v,
  me: () => S.me,
  callBack: (caseId, phone) => {
    startDial(caseId, phone);
    go(`#/case/${caseId}`);
  },
  dialBusy: () => !!(S.dial && ['starting', 'dialing', 'connected'].includes(S.dial.phase)),
};

// ---- cases list --------------------------------------------------------------------------

const PAGE = 50;

function showCases(q, seq) {
  const status = q.get('status') || '';
  const offset = Math.max(0, Number(q.get('offset')) || 0);
  const filter = h('select', {id: 'cases-filter-status', 'aria-label': t('case.status'),
    onchange: () => go(`#/cases${filter.value ? `?status=${filter.value}` : ''}`)},
  h('option', {value: ''}, t('cases.allStatuses')),
  STATUSES.map((k) => h('option', {value: k}, statusLabel(k))));
  filter.value = status;
  const body = h('div', {class: 'panel-body'}, h('p', {class: 'muted'}, t('loading')));
  const v = {name: 'cases', seq, status, offset, body};
  S.view = v;
  mount(h('section', {class: 'view', id: 'cases-view', 'data-testid': 'cases-view'},
    h('div', {class: 'view-head'},
      h('h1', null, t('cases.title')),
      h('div', {class: 'view-tools'}, filter,
        h('button', {class: 'btn', type: 'button', onclick: () => refreshCases(v)}, t('refresh')))),
    h('div', {class: 'panel'}, body)));
  refreshCases(v);
}

async function refreshCases(v) {
  if (v.busy) { v.again = true; return; }
  v.busy = true;
  try {
    const params = new URLSearchParams({channel: 'calls', limit: String(PAGE), offset: String(v.offset)});
    if (v.status) params.set('status', v.status);
    const data = await api('GET', `/api/v1/cases?${params}`);
    if (S.view !== v) return;
    v.body.replaceChildren(...[casesTable(data.items), pager(v, data.total)].filter(Boolean)); // the DOM would print a null
  } catch (err) {
    if (S.view === v) v.body.replaceChildren(errorBox(err));
  } finally {
    v.busy = false;
    if (v.again && S.view === v) { v.again = false; refreshCases(v); }
  }
}

function casesTable(items, attachCallId) {
  if (!items.length) return h('p', {class: 'empty', 'data-testid': 'cases-empty'}, t('cases.empty'));
  return h('table', {class: 'table', 'data-testid': 'cases-table'},
    h('thead', null, h('tr', null,
      h('th', {class: 'col-icon'}), h('th', {class: 'col-id'}, '#'), h('th', null, t('case.subject')),
      h('th', null, t('case.status')), h('th', null, t('case.assignee')), h('th', null, t('case.updated')),
      attachCallId ? h('th', {class: 'col-action'}) : null)),
    h('tbody', null, items.map((c) => h('tr', {'data-testid': 'case-row', dataset: {caseId: c.id}},
      h('td', {class: 'col-icon'}, caseIcon(c.call_icon)),
      h('td', {class: 'col-id muted'}, `#${c.id}`),
      h('td', null, h('a', {href: `#/case/${c.id}`, class: 'case-link'}, c.subject)),
      h('td', null, statusBadge(c.status)),
      h('td', {class: 'muted', 'data-testid': 'case-row-assignee'}, staffName(c.assignee_id)),
      h('td', {class: 'muted nowrap'}, fmtTime(c.updated_at)),
      attachCallId ? h('td', {class: 'col-action'},
        h('a', {class: 'btn btn-small', href: `#/case/${c.id}?attach=${attachCallId}`,
          'data-testid': 'attach-case', dataset: {caseId: c.id}}, t('cases.attachHere'))) : null))));
}

function pager(v, total) {
  if (!total) return null;
  if (total <= PAGE) return h('p', {class: 'muted small total'}, t('cases.total', {n: total}));
  const base = v.status ? `#/cases?status=${v.status}&` : '#/cases?';
  return h('div', {class: 'pager'},
    h('span', {class: 'muted small'}, t('pager.range', {from: v.offset + 1, to: Math.min(total, v.offset + PAGE), total})),
    v.offset > 0 ? h('a', {class: 'btn btn-small', href: `${base}offset=${Math.max(0, v.offset - PAGE)}`}, t('pager.newer')) : null,
    v.offset + PAGE < total ? h('a', {class: 'btn btn-small', href: `${base}offset=${v.offset + PAGE}`}, t('pager.older')) : null);
}

// ---- users: search and link (R7) -----------------------------------------------------------

async function getUser(id, fresh) {
  if (!fresh && S.users.has(id)) return S.users.get(id);
  const user = await api('GET', `/api/v1/users/${id}`);
  S.users.set(id, user);
  return user;
}

function showUsers(q, seq) {
  const linkCall = q.get('link');
  const input = h('input', {id: 'user-search', type: 'search', 'data-testid': 'user-search',
    placeholder: t('users.searchHint'), value: q.get('q') || '',
    'aria-label': t('users.search'), autocomplete: 'off'});
  const results = h('div', {id: 'user-results', class: 'panel-body'});
  const v = {name: 'users', seq, linkCall, input, results, timer: null, asked: 0};
  S.view = v;
  const search = () => {
    clearTimeout(v.timer);
    const params = new URLSearchParams();
    if (input.value.trim()) params.set('q', input.value.trim());
    if (linkCall) params.set('link', linkCall);
    history.replaceState(null, '', `#/users${params.toString() ? `?${params}` : ''}`);
    searchUsers(v);
  };
  const form = h('form', {class: 'search-form', onsubmit: (e) => { e.preventDefault(); search(); }},
    input, h('button', {id: 'user-search-submit', class: 'btn btn-primary', type: 'submit'}, t('users.searchButton')));
  input.addEventListener('input', () => { clearTimeout(v.timer); v.timer = setTimeout(search, 350); });
  const call = linkCall ? S.calls.get(linkCall) : null;
  mount(h('section', {class: 'view', id: 'users-view', 'data-testid': 'users-view'},
    h('div', {class: 'view-head'}, h('h1', null, t(linkCall ? 'popup.findUser' : 'users.title'))),
    linkCall ? h('div', {class: 'alert alert-info', 'data-testid': 'link-banner'},
      call && call.phone ? t('users.linkBannerPhone', {phone: fmtPhone(call.phone)}) : t('users.linkBanner')) : null,
    h('div', {class: 'panel'}, h('div', {class: 'panel-body'}, form), results)));
  input.focus();
  searchUsers(v);
}

async function searchUsers(v) {
  const asked = ++v.asked;
  const q = v.input.value.trim();
  v.results.replaceChildren(h('p', {class: 'muted'}, t('users.searching')));
  try {
    const data = await api('GET', `/api/v1/users?${new URLSearchParams({q, limit: '50'})}`);
    if (S.view !== v || asked !== v.asked) return;
    if (!data.items.length) {
      v.results.replaceChildren(h('p', {class: 'empty', 'data-testid': 'users-empty'},
        q ? t('users.noMatch', {q}) : t('users.none')));
      return;
    }
    v.results.replaceChildren(h('table', {class: 'table', 'data-testid': 'users-table'},
      h('thead', null, h('tr', null, h('th', null, t('user.name')), h('th', null, t('user.email')),
        h('th', null, t('user.company')), h('th', null, t('user.phones')),
        v.linkCall ? h('th', {class: 'col-action'}) : null)),
      h('tbody', null, data.items.map((u) => h('tr', {'data-testid': 'user-row', dataset: {userId: u.id}},
        h('td', null, h('a', {href: `#/user/${u.id}`}, userName(u))),
        h('td', {class: 'muted'}, u.email || '—'),
        h('td', {class: 'muted'}, u.company || '—'),
        h('td', {class: 'muted nowrap'}, (u.phones || []).map(fmtPhone).join(', ') || '—'),
        v.linkCall ? h('td', {class: 'col-action'}, h('button', {class: 'btn btn-small btn-primary', type: 'button',
          'data-testid': 'user-link', dataset: {userId: u.id}, onclick: (e) => linkUser(v, u, e.currentTarget)},
        t('users.link'))) : null)))));
  } catch (err) {
    if (S.view === v && asked === v.asked) v.results.replaceChildren(errorBox(err));
  }
}

async function linkUser(v, user, button) {
  button.disabled = true;
  try {
    const linked = await api('POST', `/api/v1/calls/${v.linkCall}/link-user`, {user_id: user.id});
    S.users.set(linked.id, linked);
    const call = S.calls.get(v.linkCall);
    if (call) call.userId = linked.id;
    callsChanged();
    toast(t('users.linked', {name: userName(linked)}), 'success');
    go(`#/user/${linked.id}?call=${v.linkCall}`);
  } catch (err) {
    button.disabled = false;
    if (S.view === v) v.results.prepend(errorBox(err));
  }
}

// ---- a user's profile ------------------------------------------------------------------------

async function showUser(id, q, seq) {
  const v = {name: 'user', id, seq, callId: q.get('call'), cases: null};
  S.view = v;
  v.callSlot = h('div', {id: 'profile-call'});
  v.casesBody = h('div', {class: 'panel-body', id: 'profile-cases', 'data-testid': 'profile-cases'},
    h('p', {class: 'muted'}, t('loading')));
  v.card = h('div', {class: 'panel profile-card'}, h('div', {class: 'panel-body'}, h('p', {class: 'muted'}, t('loading'))));
  mount(h('section', {class: 'view', id: 'profile-view', 'data-testid': 'profile-view', dataset: {userId: id}},
    v.callSlot, v.card,
    h('div', {class: 'panel'}, h('div', {class: 'panel-head'}, h('h2', null, t('profile.cases'))), v.casesBody)));
  renderProfileCall(v);
  try {
    v.user = await getUser(id, true);
  } catch (err) {
    if (current(seq)) v.card.replaceChildren(h('div', {class: 'panel-body'}, errorBox(err)));
    return;
  }
  if (!current(seq)) return;
  renderProfileCard(v);
  refreshProfileCases(v);
}

/** The live call with this user, if any: from the address or the calls the console knows. */
function profileCall(v) {
  if (v.callId && S.calls.get(v.callId)?.state === 'talking') return S.calls.get(v.callId);
  for (const call of S.calls.values()) {
    if (call.state === 'talking' && call.userId === v.id) return call;
  }
  return null;
}

function renderProfileCall(v) {
  const call = profileCall(v);
  const hasCases = !!(v.cases && v.cases.length);
  const key = call ? `${call.id}:${S.callCase.get(call.id) ?? ''}:${hasCases}` : '';
  if (v.callKey === key) return;
  v.callKey = key;
  if (!call) {
    v.callSlot.replaceChildren();
  } else {
    const caseId = S.callCase.get(call.id);
    v.callSlot.replaceChildren(h('div', {class: 'callbar', 'data-testid': 'profile-call-bar', dataset: {callId: call.id}},
      h('span', {class: 'callbar-icon'}, phoneIcon()),
      h('span', {class: 'callbar-text'}, h('strong', null, t('popup.inCall')), ' ', t('call.withPhone', {phone: fmtPhone(call.phone)})),
      caseId != null
        ? h('a', {class: 'btn btn-small', href: `#/case/${caseId}`}, t('popup.openCase', {id: caseId}))
        : [h('a', {class: 'btn btn-small btn-primary', id: 'profile-create-case', 'data-testid': 'profile-create-case',
          href: `#/new-case/${call.id}`}, t('call.createCase')),
        hasCases ? h('span', {class: 'muted small'}, t('profile.orAttach')) : null]));
  }
  if (v.cases) renderProfileCases(v);
}

function renderProfileCard(v) {
  const u = v.user;
  const rows = [
    ['email', t('user.email'), u.email], ['company', t('user.company'), u.company],
    ['phones', t('user.phones'), (u.phones || []).map(fmtPhone).join(', ')], ['note', t('user.note'), u.note],
    ...Object.entries(u.custom_fields || {}).map(([k, val]) => [k, k, val]),
  ];
  const edit = h('button', {class: 'btn btn-small', type: 'button', id: 'profile-edit', onclick: () => editProfile(v)}, t('profile.edit'));
  v.card.replaceChildren(h('div', {class: 'panel-body'},
    h('div', {class: 'profile-head'},
      h('div', {class: 'avatar', 'aria-hidden': 'true'}, (userName(u) || '?').trim().charAt(0).toUpperCase()),
      h('div', null, h('h1', {id: 'profile-name', 'data-testid': 'profile-name'}, u.full_name || t('profile.unnamed')),
        h('p', {class: 'muted small'}, t('profile.userId', {id: u.id}))),
      h('div', {class: 'view-tools'}, edit)),
    h('dl', {class: 'fields'}, rows.map(([key, label, val]) => [h('dt', null, label),
      h('dd', {dataset: {field: key}}, val == null || val === '' ? h('span', {class: 'muted'}, '—') : String(val))]))));
}

function editProfile(v) {
  const u = v.user;
  const input = (name, label, value, area) => {
    const el = area ? h('textarea', {id: `edit-${name}`, rows: 3, value: value || ''})
      : h('input', {id: `edit-${name}`, type: 'text', value: value || ''});
    return [h('label', {for: `edit-${name}`}, label), el];
  };
  const err = h('div');
  const form = h('form', {class: 'form-grid', onsubmit: async (e) => {
    e.preventDefault();
    const body = {};
    for (const k of ['full_name', 'email', 'company', 'note']) {
      const val = $(`edit-${k}`).value.trim();
      if (val !== (u[k] || '')) body[k] = val || null;
    }
    try {
      v.user = Object.keys(body).length ? await api('PATCH', `/api/v1/users/${u.id}`, body) : u;
      S.users.set(v.user.id, v.user);
      renderProfileCard(v);
    } catch (ex) {
      err.replaceChildren(errorBox(ex));
    }
  }},
  input('full_name', t('user.fullName'), u.full_name), input('email', t('user.email'), u.email),
  input('company', t('user.company'), u.company), input('note', t('user.note'), u.note, true), err,
  h('div', {class: 'form-actions'},
    h('button', {class: 'btn btn-primary', type: 'submit'}, t('save')),
    h('button', {class: 'btn', type: 'button', onclick: () => renderProfileCard(v)}, t('cancel'))));
  v.card.replaceChildren(h('div', {class: 'panel-body'}, h('h2', null, t('profile.editTitle')), form));
}

async function refreshProfileCases(v) {
  try {
    const data = await api('GET', `/api/v1/cases?user_id=${v.id}&channel=calls&limit=100`);
    if (S.view !== v) return;
    v.cases = data.items;
    renderProfileCall(v);
    renderProfileCases(v);
  } catch (err) {
    if (S.view === v) v.casesBody.replaceChildren(errorBox(err));
  }
}

function renderProfileCases(v) {
  const call = profileCall(v);
  const attach = call && S.callCase.get(call.id) == null ? call.id : null;
  v.casesBody.replaceChildren(v.cases.length ? casesTable(v.cases, attach)
    : h('p', {class: 'empty'}, t('profile.noCases')));
}

// ---- the case form of a call (R8, R10) -------------------------------------------------------

function drafts() {
  return loadJson(sessionStorage, DRAFTS_KEY, {});
}

function keepDraft(callId, patch) {
  const all = drafts();
  all[callId] = {...(all[callId] || {}), ...patch};
  sessionStorage.setItem(DRAFTS_KEY, JSON.stringify(all));
}

function dropDraft(callId) {
  const all = drafts();
  delete all[callId];
  sessionStorage.setItem(DRAFTS_KEY, JSON.stringify(all));
}

/** R10: what was typed is the call's draft; sent a moment after typing stops. */
function scheduleDraft(callId, fields, onState) {
  keepDraft(callId, fields);
  clearTimeout(S.draftTimers.get(callId));
  onState('pending');
  S.draftTimers.set(callId, setTimeout(async () => {
    S.draftTimers.delete(callId);
    const draft = drafts()[callId] || {};
    onState('saving');
    try {
      await api('PUT', `/api/v1/calls/${callId}/draft`, draft);
      onState('saved');
    } catch (err) {
      onState('error', err);
    }
  }, DRAFT_DELAY_MS));
}

function showCaseForm(callId, seq) {
  const saved = drafts()[callId] || {};
  const subject = h('input', {id: 'case-subject', 'data-testid': 'case-subject', type: 'text', maxlength: 500,
    value: saved.subject || '', placeholder: t('form.subjectHint'), required: true});
  const summary = h('textarea', {id: 'case-summary', 'data-testid': 'case-summary', rows: 7,
    value: saved.summary || '', placeholder: t('form.summaryHint')});
  const state = h('span', {id: 'draft-state', class: 'draft-state muted small', 'data-testid': 'draft-state', 'aria-live': 'polite'});
  const create = h('button', {id: 'case-create', 'data-testid': 'case-create', class: 'btn btn-primary', type: 'submit'}, t('form.create'));
  const err = h('div', {id: 'case-form-error'});
  const v = {name: 'new-case', seq, callId, subject, summary, state, create, err, caller: h('div', {class: 'caller-line', id: 'case-form-caller'})};
  S.view = v;
  const onState = (st, e) => {
    if (S.view !== v) return;
    state.dataset.state = st;
    state.textContent = st === 'error' ? t('draft.error', {message: errorText(e)}) : t(`draft.${st}`);
  };
  const typed = () => scheduleDraft(callId, {subject: subject.value, summary: summary.value}, onState);
  subject.addEventListener('input', typed);
  summary.addEventListener('input', typed);
  const form = h('form', {id: 'case-form', 'data-testid': 'case-form', class: 'form-grid',
    onsubmit: (e) => { e.preventDefault(); createCase(v); }},
  h('label', {for: 'case-subject'}, t('case.subject')), subject,
  h('label', {for: 'case-summary'}, t('call.summary')), summary,
  err,
  h('div', {class: 'form-actions'}, create, state));
  mount(h('section', {class: 'view', id: 'case-form-view', 'data-testid': 'case-form-view', dataset: {callId}},
    h('div', {class: 'view-head'}, h('h1', null, t('form.title'))),
    h('div', {class: 'panel'}, h('div', {class: 'panel-body'}, v.caller, form))));
  renderFormCaller(v);
  subject.focus();
}

function renderFormCaller(v) {
  const live = S.calls.get(v.callId);
  if (live) v.lastCall = {...live};
  const call = live || v.lastCall;
  const parts = [h('span', {class: 'callbar-icon'}, phoneIcon())];
  if (!live) parts.push(h('span', {class: 'badge status-closed'}, t(v.ended ? 'dial.ended' : 'form.notLive')));
  if (!call) {
    parts.push(h('span', null, t('form.callId', {id: v.callId})));
  } else if (call.userId != null) {
    const u = S.users.get(call.userId);
    if (!u) getUser(call.userId).then(() => { if (S.view === v) renderFormCaller(v); }).catch(() => {});
    parts.push(h('span', null, t('form.user'), ' ', h('strong', null, u ? userName(u) : `#${call.userId}`), ` · ${fmtPhone(call.phone)} `),
      h('a', {href: `#/user/${call.userId}?call=${v.callId}`, id: 'case-form-profile'}, t('form.toProfile')));
  } else {
    parts.push(h('span', null, h('strong', null, t('popup.unknownCaller')), ` ${fmtPhone(call.phone)}`));
    if (live) {
      parts.push(h('span', null, ' · ', t('form.newUser'), ' '),
        h('a', {href: `#/users?link=${v.callId}`}, t('form.linkInstead')));
    }
  }
  v.caller.replaceChildren(...parts);
}

async function createCase(v) {
  if (!v.subject.value.trim()) {
    v.err.replaceChildren(errorBox({message: t('form.subjectNeeded'), title: t('form.subjectNeededTitle')}));
    v.subject.focus();
    return;
  }
  clearTimeout(S.draftTimers.get(v.callId));
  v.create.disabled = true;
  v.err.replaceChildren();
  try {
    const made = await api('POST', `/api/v1/calls/${v.callId}/case`,
      {subject: v.subject.value.trim(), summary: v.summary.value});
    S.callCase.set(v.callId, made.id);
    dropDraft(v.callId);
    callsChanged();
    go(`#/case/${made.id}`);
  } catch (err) {
    v.create.disabled = false;
    if (S.view !== v) return;
    if (err.code === 'call_ended') formCallEnded(v, null);
    else v.err.replaceChildren(errorBox(err));
  }
}

/** The call ended with the form open: what was typed becomes a case (R10, R12, R23a) when the
 *  call is decided, a little after its end; the decision may have come already (a reconnect). */
async function formCallEnded(v, caseIds) {
  if (v.ended) return;
  v.ended = true;
  renderFormCaller(v);
  v.create.disabled = true;
  v.endedBox = h('div', {class: 'alert alert-info', 'data-testid': 'form-call-ended'},
    h('strong', null, t('form.ended')), ' ', t('form.endedCase'), ' ');
  v.err.replaceChildren(v.endedBox);
  let ids = caseIds || [];
  if (!ids.length) {
    try {
      ids = (await api('GET', `/api/v1/calls/${v.callId}`)).case_ids || [];
    } catch {
      ids = [];
    }
  }
  if (ids.length) formCasesReady(v, ids);
  else if (S.view === v && !v.ready) v.endedBox.append(h('span', {'data-testid': 'form-ended-wait'}, t('form.endedWait')));
}

function formCasesReady(v, ids) {
  if (S.view !== v || v.ready || !ids.length) return;
  if (!v.ended) {
    formCallEnded(v, ids);
    return;
  }
  v.ready = true;
  dropDraft(v.callId);
  v.endedBox.querySelector('[data-testid="form-ended-wait"]')?.remove();
  v.endedBox.append(...ids.map((id) => h('a', {href: `#/case/${id}`, 'data-testid': 'form-ended-case'}, t('form.openCase', {id}))));
}

// ---- the case page ---------------------------------------------------------------------------

function showCase(id, q, seq) {
  const v = {name: 'case', id, seq, attachCallId: q.get('attach'), msgEls: new Map(), case: null, user: null};
  S.view = v;
  v.header = h('div', {class: 'case-header panel'}, h('div', {class: 'panel-body'}, h('p', {class: 'muted'}, t('case.loading', {id}))));
  v.dialSlot = h('div', {id: 'dial-slot'});
  v.attachSlot = h('div', {id: 'attach-slot'});
  v.msgs = h('ol', {id: 'messages', class: 'messages', 'data-testid': 'messages'});
  v.empty = h('p', {class: 'empty', hidden: true}, t('case.noMessages'));
  mount(h('section', {class: 'view', id: 'case-view', 'data-testid': 'case-view', dataset: {caseId: id}},
    h('p', {class: 'crumbs'}, h('a', {href: '#/cases'}, t('case.allCases'))),
    v.header, v.dialSlot, v.attachSlot,
    h('div', {class: 'panel'},
      h('div', {class: 'panel-head'}, h('h2', null, t('case.conversation'))),
      h('div', {class: 'panel-body'}, v.msgs, v.empty)),
    replyForm(v)));
  renderDial();
  refreshCase(v);
}

async function refreshCase(v) {
  if (v.busy) { v.again = true; return; }
  v.busy = true;
  try {
    const data = await api('GET', `/api/v1/cases/${v.id}`);
    if (S.view !== v) return;
    v.case = data;
    if (data.user_id != null && (!v.user || v.user.id !== data.user_id)) {
      v.user = await getUser(data.user_id).catch(() => null);
    }
    if (S.view !== v) return;
    renderCaseHeader(v);
    renderMessages(v);
    renderAttach(v);
    renderDial();
  } catch (err) {
    if (S.view === v && !v.case) v.header.replaceChildren(h('div', {class: 'panel-body'}, errorBox(err)));
    else if (S.view === v) toast(t('case.refreshFailed', {message: errorText(err)}), 'error');
  } finally {
    v.busy = false;
    if (v.again && S.view === v) { v.again = false; refreshCase(v); }
  }
}

function renderCaseHeader(v) {
  const c = v.case;
  const status = h('select', {id: 'case-status', 'data-testid': 'case-status', 'aria-label': t('case.status'),
    class: `status-select status-${c.status}`, onchange: () => changeStatus(v, status)},
  STATUSES.map((k) => h('option', {value: k}, statusLabel(k))));
  status.value = c.status;
  const dialBusy = S.dial && S.dial.caseId === v.id && ['starting', 'dialing', 'connected'].includes(S.dial.phase);
  const callBtn = h('button', {id: 'case-call', 'data-testid': 'case-call', class: 'btn btn-call', type: 'button',
    disabled: dialBusy || c.user_id == null, title: t(c.user_id == null ? 'case.noUserToCall' : 'case.callUser'),
    onclick: () => startDial(v.id, v.user && v.user.phones ? v.user.phones[0] : null)}, phoneIcon(), t('case.call'));
  const user = v.user;
  v.header.replaceChildren(h('div', {class: 'panel-body'},
    h('div', {class: 'case-title-row'},
      caseIcon(c.call_icon),
      h('h1', {id: 'case-title', 'data-testid': 'case-title'}, c.subject),
      h('div', {class: 'view-tools'}, callBtn)),
    h('div', {class: 'case-meta'},
      h('div', {class: 'meta-item'}, h('span', {class: 'meta-label'}, t('case.case')), h('span', null, `#${c.id}`)),
      h('div', {class: 'meta-item'}, h('label', {class: 'meta-label', for: 'case-status'}, t('case.status')), status),
      h('div', {class: 'meta-item'}, h('span', {class: 'meta-label'}, t('case.assignee')),
        h('span', {id: 'case-assignee', 'data-testid': 'case-assignee'}, staffName(c.assignee_id))),
      h('div', {class: 'meta-item'}, h('span', {class: 'meta-label'}, t('case.user')),
        c.user_id == null ? h('span', {class: 'muted'}, t('case.noUser'))
          : h('a', {href: `#/user/${c.user_id}`, id: 'case-user', 'data-testid': 'case-user'},
            user ? userName(user) : t('profile.userId', {id: c.user_id}),
            user && user.full_name && user.phones && user.phones.length
              ? h('span', {class: 'muted'}, ` · ${fmtPhone(user.phones[0])}`) : null)),
      h('div', {class: 'meta-item'}, h('span', {class: 'meta-label'}, t('case.created')), h('span', null, fmtTime(c.created_at))),
      h('div', {class: 'meta-item'}, h('span', {class: 'meta-label'}, t('case.updated')), h('span', null, fmtTime(c.updated_at))))));
}

async function changeStatus(v, select) {
  const before = v.case.status;
  select.disabled = true;
  try {
    const updated = await api('PATCH', `/api/v1/cases/${v.id}`, {status: select.value});
    v.case = {...v.case, ...updated};
    toast(t('case.statusChanged', {status: statusLabel(updated.status)}), 'success');
    if (S.view === v) renderCaseHeader(v);
  } catch (err) {
    select.value = before;
    toast(t('case.statusNotChanged', {message: errorText(err)}), 'error');
  } finally {
    select.disabled = false;
  }
}

/** Messages oldest first; unchanged ones keep their element (a playing recording goes on). */
function renderMessages(v) {
  const seen = new Set();
  let prev = null;
  for (const m of v.case.messages || []) {
    const key = String(m.id);
    seen.add(key);
    const sig = JSON.stringify(m) + staffName(m.author_staff_id);
    let rec = v.msgEls.get(key);
    if (!rec || rec.sig !== sig) {
      const el = messageEl(m);
      if (rec) rec.el.replaceWith(el);
      rec = {sig, el};
      v.msgEls.set(key, rec);
    }
    const want = prev ? prev.nextSibling : v.msgs.firstChild;
    if (rec.el !== want) v.msgs.insertBefore(rec.el, want);
    prev = rec.el;
  }
  for (const [key, rec] of v.msgEls) {
    if (!seen.has(key)) { rec.el.remove(); v.msgEls.delete(key); }
  }
  v.empty.hidden = seen.size > 0;
}

/** Names came: authors are drawn again (a message with a playing recording has none). */
function rerenderMessages(v) {
  if (v.case) renderMessages(v);
}

function messageEl(m) {
  const kindLabel = ['reply', 'note', 'call'].includes(m.kind) ? t(`message.${m.kind}`) : m.kind;
  const author = m.author_staff_id != null ? staffName(m.author_staff_id)
    : t(m.kind === 'call' ? 'message.telephony' : 'message.user');
  let callBlock = null;
  if (m.call) {
    const c = m.call;
    const outcome = ['in_progress', 'answered', 'missed', 'attempt'].includes(c.outcome) ? t(`outcome.${c.outcome}`) : c.outcome;
    callBlock = h('div', {class: `call-info outcome-${c.outcome}`, 'data-testid': 'call-info',
      dataset: {outcome: c.outcome, callId: c.call_session_id}},
    h('div', {class: 'call-line'},
      h('span', {class: `call-badge ${c.outcome}`}, phoneIcon()),
      h('span', {class: 'call-direction', 'data-testid': 'call-direction'}, t(c.direction === 'out' ? 'call.outgoing' : 'call.incoming')),
      h('span', {class: 'sep'}, '·'),
      h('span', {class: 'call-outcome', 'data-testid': 'call-outcome'},
        c.outcome === 'in_progress' ? h('span', {class: 'live-dot', 'aria-hidden': 'true'}) : null, outcome),
      c.outcome !== 'in_progress' && c.outcome !== 'missed' && c.outcome !== 'attempt'
        ? [h('span', {class: 'sep'}, '·'), h('span', {class: 'call-talk', 'data-testid': 'call-talk'}, t('call.talkTime', {time: fmtDuration(c.talk_seconds)}))]
        : null),
    (c.recording_urls || []).length
      ? h('div', {class: 'recordings'}, c.recording_urls.map((url, i) => h('div', {class: 'recording'},
        h('audio', {controls: true, preload: 'none', src: url, 'data-testid': 'recording'}),
        h('a', {href: url, target: '_blank', rel: 'noopener', class: 'small'},
          c.recording_urls.length > 1 ? t('call.recordingN', {n: i + 1}) : t('call.download')))))
      : c.outcome === 'answered' ? h('p', {class: 'muted small'}, t('call.noRecordingYet')) : null);
  }
  const body = m.body ? h('div', {class: 'message-body', 'data-testid': 'message-body'}, m.body)
    : m.kind === 'call' ? null : h('div', {class: 'message-body muted'}, t('message.empty'));
  return h('li', {class: `message kind-${m.kind}`, 'data-testid': 'message', dataset: {kind: m.kind, messageId: m.id}},
    h('div', {class: 'message-meta'},
      h('span', {class: 'author'}, author),
      h('span', {class: `kind-tag kind-${m.kind}`}, kindLabel),
      h('time', {datetime: m.created_at}, fmtTime(m.created_at))),
    callBlock, body);
}

function replyForm(v) {
  const body = h('textarea', {id: 'reply-body', 'data-testid': 'reply-body', rows: 4, placeholder: t('reply.hint')});
  const kind = h('select', {id: 'reply-kind', 'data-testid': 'reply-kind', 'aria-label': t('reply.kind')},
    h('option', {value: 'reply'}, t('message.reply')), h('option', {value: 'note'}, t('message.note')));
  const send = h('button', {id: 'reply-send', 'data-testid': 'reply-send', class: 'btn btn-primary', type: 'submit'}, t('reply.send'));
  const err = h('div');
  kind.addEventListener('change', () => {
    send.textContent = t(kind.value === 'note' ? 'reply.addNote' : 'reply.send');
    body.classList.toggle('note', kind.value === 'note');
  });
  return h('form', {class: 'panel reply-form', id: 'reply-form', onsubmit: async (e) => {
    e.preventDefault();
    if (!body.value.trim()) return;
    send.disabled = true;
    err.replaceChildren();
    try {
      await api('POST', `/api/v1/cases/${v.id}/messages`, {body: body.value, kind: kind.value});
      body.value = '';
      refreshCase(v);
    } catch (ex) {
      err.replaceChildren(errorBox(ex));
    } finally {
      send.disabled = false;
    }
  }},
  h('div', {class: 'panel-body'}, body, err, h('div', {class: 'form-actions'}, kind, send)));
}

// ---- attaching the current call to the case (R9) ---------------------------------------------

function attachCandidate(v) {
  if (!v.case) return null;
  const inCase = (id) => (v.case.messages || []).some((m) => m.call && String(m.call.call_session_id) === String(id));
  if (v.attachCallId && !inCase(v.attachCallId)) {
    const call = S.calls.get(v.attachCallId);
    if (!call || call.state === 'talking') return v.attachCallId;
  }
  for (const call of S.calls.values()) {
    if (call.state === 'talking' && v.case.user_id != null && call.userId === v.case.user_id
      && S.callCase.get(call.id) == null && !inCase(call.id)) return call.id;
  }
  return null;
}

function renderAttach(v) {
  const callId = attachCandidate(v);
  if (callId === (v.attach && v.attach.callId)) return;
  if (!callId) {
    // "Recorded in this case" stays while the call lasts.
    if (!v.attach || !v.attach.done || !S.calls.has(String(v.attach.callId))) {
      v.attachSlot.replaceChildren();
      v.attach = null;
    }
    return;
  }
  const open = String(v.attachCallId) === String(callId);
  const a = {callId, done: false};
  v.attach = a;
  const call = S.calls.get(callId);
  const saved = drafts()[callId] || {};
  const summary = h('textarea', {id: 'attach-summary', 'data-testid': 'attach-summary', rows: 4,
    value: saved.summary || '', placeholder: t('call.summaryHint')});
  const state = h('span', {class: 'draft-state muted small', 'data-testid': 'attach-draft-state'});
  summary.addEventListener('input', () => scheduleDraft(callId, {summary: summary.value}, (st) => {
    state.textContent = st === 'saved' ? t('draft.saved') : st === 'error' ? t('draft.notSaved') : '';
  }));
  const submit = h('button', {id: 'attach-submit', 'data-testid': 'attach-submit', class: 'btn btn-primary', type: 'submit'}, t('attach.submit'));
  const err = h('div');
  const form = h('form', {id: 'attach-form', class: 'form-grid', hidden: !open, onsubmit: async (e) => {
    e.preventDefault();
    submit.disabled = true;
    err.replaceChildren();
    clearTimeout(S.draftTimers.get(callId));
    try {
      await api('POST', `/api/v1/calls/${callId}/attach`, {case_id: v.id, summary: summary.value});
      a.done = true;
      dropDraft(callId);
      S.callCase.set(String(callId), v.id);
      v.attachSlot.replaceChildren(h('div', {class: 'alert alert-success', 'data-testid': 'attach-done'}, t('attach.done')));
      callsChanged();
      refreshCase(v);
    } catch (ex) {
      submit.disabled = false;
      err.replaceChildren(errorBox(ex));
    }
  }},
  h('label', {for: 'attach-summary'}, t('call.summary')), summary, err,
  h('div', {class: 'form-actions'}, submit, state));
  const toggle = h('button', {id: 'attach-open', 'data-testid': 'attach-open', class: 'btn btn-link', type: 'button', hidden: open,
    onclick: () => { form.hidden = false; toggle.hidden = true; summary.focus(); }}, t('attach.open'));
  v.attachSlot.replaceChildren(h('div', {class: 'panel attach-panel', id: 'attach-panel', 'data-testid': 'attach-panel', dataset: {callId}},
    h('div', {class: 'panel-body'},
      h('div', {class: 'callbar-inline'}, h('span', {class: 'callbar-icon'}, phoneIcon()),
        h('strong', null, t('attach.current')), call && call.phone ? ` ${t('call.withPhone', {phone: fmtPhone(call.phone)})}` : '',
        h('span', {class: 'spacer'}), toggle,
        h('a', {class: 'btn btn-link', href: call && call.userId != null ? `#/user/${call.userId}?call=${callId}` : `#/users?link=${callId}`},
          t('attach.backToProfile'))),
      form)));
  if (open) summary.focus();
}

// ---- calling the user from a case (R18–R20) ----------------------------------------------------

/** Ask UIS to connect the staff member with the case's user; the case shows how it goes. */
async function startDial(caseId, phone) {
  const dial = {caseId, callId: null, externalId: null, phase: 'starting', error: null, phone};
  S.dial = dial;
  dialChanged(dial);
  try {
    const res = await api('POST', `/api/v1/cases/${caseId}/calls`, {});
    if (S.dial !== dial) return;
    dial.callId = dial.callId ?? res.call_session_id;
    dial.externalId = res.external_id;
    if (dial.phase === 'starting') dial.phase = 'dialing';
  } catch (err) {
    if (S.dial !== dial) return;
    dial.phase = 'error';
    dial.error = err;
  }
  dialChanged(dial);
}

function dialChanged(dial) {
  renderDial();
  const v = S.view;
  if (v && v.name === 'case' && v.case && v.id === dial.caseId) renderCaseHeader(v);
  renderCorner();
}

function dialEvent(ev, phase) {
  let d = S.dial;
  const id = ev.call_session_id;
  const same = d && ((d.callId != null && String(d.callId) === String(id))
    || (d.callId == null && ev.case_id != null && d.caseId === ev.case_id));
  if (!same) {
    if (ev.case_id == null) return; // a Call API call not started from a case here
    d = {caseId: ev.case_id, callId: id, externalId: null, phase, error: null, phone: ev.phone};
    S.dial = d;
  }
  d.callId = id;
  if (ev.phone) d.phone = ev.phone;
  if (d.phase !== 'ended') d.phase = d.phase === 'connected' && phase === 'dialing' ? 'connected' : phase;
  dialChanged(d);
}

function dialEnded(dial) {
  dial.phase = 'ended';
  renderDial();
  renderCorner();
  const v = S.view;
  if (v && v.name === 'case' && v.id === dial.caseId) refreshCase(v);
  worklist.changed(v);
  setTimeout(() => {
    if (S.dial === dial && dial.phase === 'ended') {
      S.dial = null;
      renderDial();
    }
  }, 6000);
}

// A 502 is a refusal only when UIS answered one: with these codes UIS was not reached or its
// answer was lost or unreadable, and the message says whether the call may still start.
const NO_ANSWER_FROM_UIS = new Set(['uis_unreachable', 'uis_timeout', 'uis_bad_response']);

function dialErrorTitle(error) {
  if (error.status !== 502) return t('dial.notStarted');
  return t(NO_ANSWER_FROM_UIS.has(error.code) ? 'dial.noAnswerFromUis' : 'dial.uisRefused');
}

function renderDial() {
  const v = S.view;
  if (!v || v.name !== 'case') return;
  const d = S.dial;
  if (!d || d.caseId !== v.id) {
    v.dialSlot.replaceChildren();
    return;
  }
  if (!d.el) {
    d.summary = h('textarea', {id: 'dial-summary', 'data-testid': 'dial-summary', rows: 3, placeholder: t('call.summaryHint')});
    d.save = h('button', {id: 'dial-attach', 'data-testid': 'dial-attach', class: 'btn btn-primary', type: 'button',
      onclick: () => saveDialSummary(d)}, t('dial.save'));
    d.saveState = h('span', {class: 'muted small', 'data-testid': 'dial-attach-state'});
    d.el = h('div', {class: 'panel dial-block', id: 'dial-block', 'data-testid': 'dial-block'});
  }
  d.el.dataset.phase = d.phase;
  const text = t(`dial.${d.phase}`);
  const hint = d.phase === 'dialing'
    ? t('dial.dialingHint', {who: d.phone ? fmtPhone(d.phone) : t('dial.theUser')})
    : d.phase === 'error' ? '' : t(`dial.${d.phase}Hint`);
  const parts = [
    h('div', {class: 'dial-head'},
      h('span', {class: `dial-icon ${d.phase}`}, phoneIcon()),
      h('div', null,
        h('div', {class: 'dial-status', id: 'dial-status', 'data-testid': 'dial-status'}, text),
        hint ? h('div', {class: 'muted small'}, hint) : null),
      d.phase === 'error' || d.phase === 'ended'
        ? h('button', {class: 'popup-close', type: 'button', 'aria-label': t('close'), onclick: () => { S.dial = null; renderDial(); }}, '×')
        : null),
  ];
  if (d.phase === 'error') {
    parts.push(h('div', {class: 'alert alert-error', id: 'dial-error', 'data-testid': 'dial-error', role: 'alert',
      dataset: {code: d.error.code}},
    h('strong', null, dialErrorTitle(d.error)), ' ',
    h('span', {'data-testid': 'dial-error-message'}, errorText(d.error)),
    h('span', {class: 'code'}, ` (${d.error.code})`)));
  }
  if (d.phase === 'connected' || (d.phase === 'ended' && d.saved)) {
    parts.push(h('div', {class: 'form-grid dial-form'},
      h('label', {for: 'dial-summary'}, t('call.summary')), d.summary,
      h('div', {class: 'form-actions'}, d.save, d.saveState)));
    d.save.disabled = !!d.saved || d.phase !== 'connected';
    d.summary.disabled = !!d.saved;
  }
  d.el.replaceChildren(...parts);
  if (v.dialSlot.firstChild !== d.el) v.dialSlot.replaceChildren(d.el);
}

async function saveDialSummary(d) {
  d.save.disabled = true;
  d.saveState.textContent = t('dial.saving');
  try {
    await api('POST', `/api/v1/calls/${d.callId}/attach`, {case_id: d.caseId, summary: d.summary.value});
    d.saved = true;
    d.saveState.textContent = t('dial.saved');
    renderDial();
    const v = S.view;
    if (v && v.name === 'case' && v.id === d.caseId) refreshCase(v);
  } catch (err) {
    d.save.disabled = false;
    d.saveState.textContent = t('dial.notSaved', {message: errorText(err)});
  }
}

// ---- start -----------------------------------------------------------------------------------

window.I18N.apply(document);
document.title = t('title');
$('lang-slot').replaceChildren(window.I18N.switcher());
$('signin-lang').replaceChildren(window.I18N.switcher());
alerts.init();
$('signin-form').addEventListener('submit', signIn);
$('signout').addEventListener('click', signOutClicked);
window.addEventListener('hashchange', route);
window.addEventListener('online', () => { if (S.started && !S.ws && $('admin-banner').hidden) connect(); });
boot();
