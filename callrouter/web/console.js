/* The staff console of callrouter: plain JavaScript, no build step.
 *
 * It signs in with a staff token (kept in localStorage), listens to the live events of
 * `GET /api/v1/events?token=` and drives the JSON API of API.md:
 *   - incoming-call popups (R5) and what to do once the call is answered (R6–R10);
 *   - the case page with its messages, recordings, status, replies and notes;
 *   - calling the user from a case (R18–R20), with a notice to get back to the case.
 * Views are addressed by the URL hash: #/cases, #/case/ID, #/user/ID, #/users, #/new-case/CALL.
 */
'use strict';

(() => {
  const TOKEN_KEY = 'callrouter.token';
  const OPENED_KEY = 'callrouter.openedCalls'; // calls whose profile was opened automatically
  const DRAFTS_KEY = 'callrouter.drafts'; // what was typed per call, to come back to the form
  const DRAFT_DELAY_MS = 600;
  const MAX_BACKOFF_S = 30;

  const S = {
    token: localStorage.getItem(TOKEN_KEY),
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

  // ---- small helpers -------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'value') el.value = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid == null || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  const PHONE_PATH =
    'M22 16.92v3a2 2 0 0 1-2.18 2 19.79 19.79 0 0 1-8.63-3.07 19.5 19.5 0 0 1-6-6 ' +
    '19.79 19.79 0 0 1-3.07-8.67A2 2 0 0 1 4.11 2h3a2 2 0 0 1 2 1.72 12.84 12.84 0 0 0 ' +
    '.7 2.81 2 2 0 0 1-.45 2.11L8.09 9.91a16 16 0 0 0 6 6l1.27-1.27a2 2 0 0 1 2.11-.45 ' +
    '12.84 12.84 0 0 0 2.81.7A2 2 0 0 1 22 16.92z';

  function phoneIcon(cls, title) {
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('class', 'icon ' + (cls || ''));
    svg.setAttribute('aria-hidden', title ? 'false' : 'true');
    if (title) {
      const t = document.createElementNS(SVG_NS, 'title');
      t.textContent = title;
      svg.append(t);
    }
    const path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', PHONE_PATH);
    svg.append(path);
    return svg;
  }

  /** The case's phone icon: red for a missed call, green for a normal one (R15, R17). */
  function caseIcon(callIcon) {
    if (callIcon === 'missed') {
      return h('span', {class: 'case-icon missed', 'data-testid': 'case-icon', dataset: {icon: 'missed'},
        title: 'Missed call'}, phoneIcon('', 'Missed call'));
    }
    if (callIcon === 'normal') {
      return h('span', {class: 'case-icon normal', 'data-testid': 'case-icon', dataset: {icon: 'normal'},
        title: 'Call'}, phoneIcon('', 'Call'));
    }
    return h('span', {class: 'case-icon none', 'data-testid': 'case-icon', dataset: {icon: 'none'}});
  }

  /** A Russian number as people read it: 79260000000 -> +7 926 000-00-00. */
  function fmtPhone(raw) {
    if (!raw) return '—';
    const d = String(raw).replace(/\D/g, '');
    if (d.length === 11 && (d[0] === '7' || d[0] === '8')) {
      return `+7 ${d.slice(1, 4)} ${d.slice(4, 7)}-${d.slice(7, 9)}-${d.slice(9)}`;
    }
    return String(raw);
  }

  /** ISO time with the account's offset, shown in that zone: 2026-11-01 12:34. */
  function fmtTime(iso) {
    if (!iso) return '—';
    const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(iso);
    return m ? `${m[1]} ${m[2]}` : iso;
  }

  function fmtDuration(seconds) {
    if (seconds == null) return '—';
    const s = Math.max(0, Math.round(seconds));
    const hh = Math.floor(s / 3600);
    const mm = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, '0');
    return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
  }

  const STATUS_LABELS = {open: 'Open', waiting: 'Waiting', closed: 'Closed'};
  const OUTCOME_LABELS = {
    in_progress: 'Call in progress',
    answered: 'Answered',
    missed: 'Missed call',
    attempt: 'Call attempt: no answer',
  };

  function statusBadge(status) {
    return h('span', {class: `badge status-${status}`, 'data-testid': 'status-badge'},
      STATUS_LABELS[status] || status);
  }

  const staffName = (id) => (id == null ? 'Unassigned' : `Staff #${id}`);

  function userName(user) {
    if (!user) return 'Unknown user';
    return user.full_name || user.email || user.company || fmtPhone((user.phones || [])[0]);
  }

  function toast(message, kind) {
    const el = h('div', {class: `toast ${kind || 'info'}`, role: 'status', 'data-testid': 'toast'}, message);
    $('toasts').append(el);
    setTimeout(() => el.classList.add('fade'), 4500);
    setTimeout(() => el.remove(), 5000);
  }

  function errorBox(err, testid) {
    return h('div', {class: 'alert alert-error', role: 'alert', 'data-testid': testid || 'error'},
      h('strong', null, err.title || 'Something went wrong'), ' ', err.message || String(err),
      err.code ? h('span', {class: 'code'}, ` (${err.code})`) : null);
  }

  function loadJson(storage, key, fallback) {
    try {
      return JSON.parse(storage.getItem(key)) ?? fallback;
    } catch {
      return fallback;
    }
  }

  // ---- the API ---------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body, token) {
    const headers = {Accept: 'application/json', Authorization: `Bearer ${token || S.token}`};
    const init = {method, headers};
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch {
      throw new ApiError(0, 'network_error', 'The service cannot be reached. Check the connection and try again.');
    }
    const text = await resp.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!resp.ok) {
      const e = (data && data.error) || {};
      if (resp.status === 401 && !token) {
        signOut('Your token is no longer accepted. Sign in again.');
      }
      throw new ApiError(resp.status, e.code || `http_${resp.status}`, e.message || `The service answered HTTP ${resp.status}.`);
    }
    return data;
  }

  async function getUser(id, fresh) {
    if (!fresh && S.users.has(id)) return S.users.get(id);
    const user = await api('GET', `/api/v1/users/${id}`);
    S.users.set(id, user);
    return user;
  }

  // ---- sign-in, sign-out ---------------------------------------------------------------

  function showSignedIn(signedIn) {
    document.body.classList.toggle('signed-out', !signedIn);
    document.body.classList.toggle('signed-in', signedIn);
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
      if (!opened) {
        throw new ApiError(403, 'not_staff',
          'This token cannot receive live call events. Use your staff token, not the admin token.');
      }
      S.token = token;
      localStorage.setItem(TOKEN_KEY, token);
      $('signin-token').value = '';
      start();
    } catch (err) {
      errEl.textContent = err.status === 401 ? 'This token is not valid.' : err.message;
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

  function signOut(reason) {
    const ws = S.ws;
    S.ws = null;
    if (ws) ws.close(1000, 'signed out');
    clearTimeout(S.wsTimer);
    clearInterval(S.countdown);
    S.token = null;
    localStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(OPENED_KEY);
    S.calls.clear();
    S.callCase.clear();
    S.dial = null;
    S.view = null;
    S.users.clear();
    $('view').replaceChildren();
    renderCorner();
    setConn('offline');
    showSignedIn(false);
    const errEl = $('signin-error');
    errEl.textContent = reason || '';
    errEl.hidden = !reason;
    $('signin-token').focus();
  }

  function start() {
    showSignedIn(true);
    connect();
    if (!location.hash || location.hash === '#' || location.hash === '#/') location.hash = '#/cases';
    else route();
  }

  // ---- live events ---------------------------------------------------------------------

  function eventsUrl(token) {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    return `${scheme}://${location.host}/api/v1/events?token=${encodeURIComponent(token)}`;
  }

  function setConn(state, text) {
    const el = $('conn-state');
    el.dataset.state = state;
    $('conn-text').textContent = text || {connected: 'Live', connecting: 'Connecting…', offline: 'Offline'}[state];
  }

  function connect() {
    clearTimeout(S.wsTimer);
    clearInterval(S.countdown);
    if (!S.token) return;
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
      if (S.token) reconnectLater();
    };
  }

  function reconnectLater() {
    const base = Math.min(MAX_BACKOFF_S, 2 ** S.attempts);
    S.attempts += 1;
    const delay = base * (0.75 + Math.random() * 0.5);
    let left = Math.ceil(delay);
    setConn('offline', `Offline · retrying in ${left} s`);
    S.countdown = setInterval(() => {
      left -= 1;
      if (left > 0) setConn('offline', `Offline · retrying in ${left} s`);
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
        S.calls.set(id, {
          ...(prev || {}), id, state: 'ringing', direction: ev.direction, phone: ev.phone,
          user: ev.user || null, userId: ev.user ? ev.user.id : null,
        });
        S.dismissed.delete(id);
        callsChanged();
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
        break;
      case 'case.updated':
        caseUpdated(ev.case_id);
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
    const v = S.view;
    if (v && v.name === 'user') renderProfileCall(v);
    if (v && v.name === 'case') renderAttach(v);
    if (v && v.name === 'new-case') renderFormCaller(v);
  }

  // ---- the top-right corner: popups and the notice --------------------------------------

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
    document.title = ringing ? '☎ Incoming call · Calls console' : 'Calls · Staff console';
  }

  function popup(call) {
    const talking = call.state === 'talking';
    const title = talking ? 'In call' : call.direction === 'out' ? 'Outgoing call' : 'Incoming call';
    const caseId = S.callCase.get(call.id);
    const body = [];
    if (call.user && call.user.fields) {
      const rows = call.user.fields.filter((f) => f.value != null && f.value !== '');
      body.push(h('dl', {class: 'popup-fields', 'data-testid': 'popup-fields'},
        rows.map((f) => [h('dt', null, f.title), h('dd', {dataset: {key: f.key}}, String(f.value))])));
      if (!rows.length) body.push(h('p', {class: 'popup-caller muted'}, 'Known user'));
    } else if (call.userId != null) {
      const known = S.users.get(call.userId);
      body.push(h('p', {class: 'popup-caller', 'data-testid': 'popup-caller'}, known ? userName(known) : 'Known user'));
      if (!known) getUser(call.userId).then(() => renderCorner()).catch(() => {});
    } else {
      body.push(h('p', {class: 'popup-caller unknown', 'data-testid': 'popup-unknown'}, 'Unknown caller'));
    }
    const actions = [];
    if (talking) {
      if (caseId != null) {
        actions.push(h('a', {class: 'btn btn-small', href: `#/case/${caseId}`, 'data-testid': 'popup-open-case'}, `Open case #${caseId}`));
      } else if (call.userId != null) {
        actions.push(
          h('a', {class: 'btn btn-small', href: `#/user/${call.userId}?call=${call.id}`, 'data-testid': 'popup-open-profile'}, 'Open profile'),
          h('a', {class: 'btn btn-small btn-primary', href: `#/new-case/${call.id}`, 'data-testid': 'popup-create-case'}, 'Create a case from this call'));
      } else {
        actions.push(
          h('a', {class: 'btn btn-small', href: `#/users?link=${call.id}`, 'data-testid': 'popup-find-user'}, 'Find a user to link'),
          h('a', {class: 'btn btn-small btn-primary', href: `#/new-case/${call.id}`, 'data-testid': 'popup-create-case'}, 'Create a case from this call'));
      }
    }
    return h('section', {
      class: `popup ${talking ? 'talking' : 'ringing'}`, 'data-testid': 'call-popup',
      dataset: {callId: call.id, state: call.state, key: `call-${call.id}`}, role: 'dialog', 'aria-label': title,
    },
    h('header', {class: 'popup-head'},
      h('span', {class: 'popup-icon'}, phoneIcon()),
      h('span', {class: 'popup-title', 'data-testid': 'popup-title'}, title),
      h('button', {class: 'popup-close', type: 'button', title: 'Hide', 'aria-label': 'Hide',
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
    const state = d.phase === 'connected' ? 'In call' : 'Dialing…';
    return h('section', {class: 'popup notice', 'data-testid': 'dial-notice', id: 'dial-notice', role: 'status',
      dataset: {key: `dial-${d.caseId}`}},
      h('header', {class: 'popup-head'},
        h('span', {class: 'popup-icon'}, phoneIcon()),
        h('span', {class: 'popup-title'}, `${state} · case #${d.caseId}`)),
      h('p', {class: 'muted small'}, d.phone ? `Call with ${fmtPhone(d.phone)} from case #${d.caseId}.` : `Call from case #${d.caseId}.`),
      h('div', {class: 'popup-actions'},
        h('a', {class: 'btn btn-small btn-primary', id: 'dial-notice-link', 'data-testid': 'dial-notice-link',
          href: `#/case/${d.caseId}`}, 'Back to the case')));
  }

  // ---- routing -------------------------------------------------------------------------

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

  function route() {
    if (!S.token) return;
    const {parts, q} = parseHash();
    const seq = ++routeSeq;
    S.view = null;
    for (const a of document.querySelectorAll('[data-nav]')) {
      a.classList.toggle('active', a.dataset.nav === (parts[0] === 'case' ? 'cases' : parts[0] === 'user' ? 'users' : parts[0]));
    }
    const id = Number(parts[1]);
    switch (parts[0]) {
      case 'case': showCase(id, q, seq); break;
      case 'user': showUser(id, q, seq); break;
      case 'users': showUsers(q, seq); break;
      case 'new-case': showCaseForm(parts[1], seq); break;
      default: showCases(q, seq); break;
    }
    renderCorner();
  }

  const current = (seq) => seq === routeSeq;

  // ---- cases list ----------------------------------------------------------------------

  const PAGE = 50;

  function showCases(q, seq) {
    const status = q.get('status') || '';
    const offset = Math.max(0, Number(q.get('offset')) || 0);
    const filter = h('select', {id: 'cases-filter-status', 'aria-label': 'Status',
      onchange: () => go(`#/cases${filter.value ? `?status=${filter.value}` : ''}`)},
    h('option', {value: ''}, 'All statuses'),
    Object.entries(STATUS_LABELS).map(([k, label]) => h('option', {value: k}, label)));
    filter.value = status;
    const body = h('div', {class: 'panel-body'}, h('p', {class: 'muted'}, 'Loading…'));
    const v = {name: 'cases', seq, status, offset, body};
    S.view = v;
    mount(h('section', {class: 'view', id: 'cases-view', 'data-testid': 'cases-view'},
      h('div', {class: 'view-head'},
        h('h1', null, 'Call cases'),
        h('div', {class: 'view-tools'}, filter,
          h('button', {class: 'btn', type: 'button', onclick: () => refreshCases(v)}, 'Refresh'))),
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
      v.body.replaceChildren(...[casesTable(data.items), pager(v, data.total)].filter(Boolean));  // the DOM would print a null
    } catch (err) {
      if (S.view === v) v.body.replaceChildren(errorBox(err));
    } finally {
      v.busy = false;
      if (v.again && S.view === v) { v.again = false; refreshCases(v); }
    }
  }

  function casesTable(items, attachCallId) {
    if (!items.length) return h('p', {class: 'empty', 'data-testid': 'cases-empty'}, 'No cases yet.');
    return h('table', {class: 'table', 'data-testid': 'cases-table'},
      h('thead', null, h('tr', null,
        h('th', {class: 'col-icon'}), h('th', {class: 'col-id'}, '#'), h('th', null, 'Subject'),
        h('th', null, 'Status'), h('th', null, 'Assignee'), h('th', null, 'Updated'),
        attachCallId ? h('th', {class: 'col-action'}) : null)),
      h('tbody', null, items.map((c) => h('tr', {'data-testid': 'case-row', dataset: {caseId: c.id}},
        h('td', {class: 'col-icon'}, caseIcon(c.call_icon)),
        h('td', {class: 'col-id muted'}, `#${c.id}`),
        h('td', null, h('a', {href: `#/case/${c.id}`, class: 'case-link'}, c.subject)),
        h('td', null, statusBadge(c.status)),
        h('td', {class: 'muted'}, staffName(c.assignee_id)),
        h('td', {class: 'muted nowrap'}, fmtTime(c.updated_at)),
        attachCallId ? h('td', {class: 'col-action'},
          h('a', {class: 'btn btn-small', href: `#/case/${c.id}?attach=${attachCallId}`,
            'data-testid': 'attach-case', dataset: {caseId: c.id}}, 'Attach the call to this case')) : null))));
  }

  function pager(v, total) {
    if (!total) return null;
    if (total <= PAGE) return h('p', {class: 'muted small total'}, `${total} case${total === 1 ? '' : 's'}`);
    const base = v.status ? `#/cases?status=${v.status}&` : '#/cases?';
    return h('div', {class: 'pager'},
      h('span', {class: 'muted small'}, `${v.offset + 1}–${Math.min(total, v.offset + PAGE)} of ${total}`),
      v.offset > 0 ? h('a', {class: 'btn btn-small', href: `${base}offset=${Math.max(0, v.offset - PAGE)}`}, 'Newer') : null,
      v.offset + PAGE < total ? h('a', {class: 'btn btn-small', href: `${base}offset=${v.offset + PAGE}`}, 'Older') : null);
  }

  // ---- users: search and link (R7) ------------------------------------------------------

  function showUsers(q, seq) {
    const linkCall = q.get('link');
    const input = h('input', {id: 'user-search', type: 'search', 'data-testid': 'user-search',
      placeholder: 'Name, email, company, phone, note or any field value', value: q.get('q') || '',
      'aria-label': 'Search users', autocomplete: 'off'});
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
      input, h('button', {id: 'user-search-submit', class: 'btn btn-primary', type: 'submit'}, 'Search'));
    input.addEventListener('input', () => { clearTimeout(v.timer); v.timer = setTimeout(search, 350); });
    const call = linkCall ? S.calls.get(linkCall) : null;
    mount(h('section', {class: 'view', id: 'users-view', 'data-testid': 'users-view'},
      h('div', {class: 'view-head'}, h('h1', null, linkCall ? 'Find a user to link' : 'Users')),
      linkCall ? h('div', {class: 'alert alert-info', 'data-testid': 'link-banner'},
        'Choose the user who is calling', call && call.phone ? ` from ${fmtPhone(call.phone)}` : '',
        ': their profile gets this number and opens.') : null,
      h('div', {class: 'panel'}, h('div', {class: 'panel-body'}, form), results)));
    input.focus();
    searchUsers(v);
  }

  async function searchUsers(v) {
    const asked = ++v.asked;
    const q = v.input.value.trim();
    v.results.replaceChildren(h('p', {class: 'muted'}, 'Searching…'));
    try {
      const data = await api('GET', `/api/v1/users?${new URLSearchParams({q, limit: '50'})}`);
      if (S.view !== v || asked !== v.asked) return;
      if (!data.items.length) {
        v.results.replaceChildren(h('p', {class: 'empty', 'data-testid': 'users-empty'}, q ? `No users match “${q}”.` : 'No users yet.'));
        return;
      }
      v.results.replaceChildren(h('table', {class: 'table', 'data-testid': 'users-table'},
        h('thead', null, h('tr', null, h('th', null, 'Name'), h('th', null, 'Email'), h('th', null, 'Company'),
          h('th', null, 'Phones'), v.linkCall ? h('th', {class: 'col-action'}) : null)),
        h('tbody', null, data.items.map((u) => h('tr', {'data-testid': 'user-row', dataset: {userId: u.id}},
          h('td', null, h('a', {href: `#/user/${u.id}`}, userName(u))),
          h('td', {class: 'muted'}, u.email || '—'),
          h('td', {class: 'muted'}, u.company || '—'),
          h('td', {class: 'muted nowrap'}, (u.phones || []).map(fmtPhone).join(', ') || '—'),
          v.linkCall ? h('td', {class: 'col-action'}, h('button', {class: 'btn btn-small btn-primary', type: 'button',
            'data-testid': 'user-link', dataset: {userId: u.id}, onclick: (e) => linkUser(v, u, e.currentTarget)}, 'Link')) : null)))));
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
      toast(`${userName(linked)} now has the caller's number.`, 'success');
      go(`#/user/${linked.id}?call=${v.linkCall}`);
    } catch (err) {
      button.disabled = false;
      if (S.view === v) v.results.prepend(errorBox(err));
    }
  }

  // ---- a user's profile ------------------------------------------------------------------

  async function showUser(id, q, seq) {
    const v = {name: 'user', id, seq, callId: q.get('call'), cases: null};
    S.view = v;
    v.callSlot = h('div', {id: 'profile-call'});
    v.casesBody = h('div', {class: 'panel-body', id: 'profile-cases', 'data-testid': 'profile-cases'},
      h('p', {class: 'muted'}, 'Loading…'));
    v.card = h('div', {class: 'panel profile-card'}, h('div', {class: 'panel-body'}, h('p', {class: 'muted'}, 'Loading…')));
    mount(h('section', {class: 'view', id: 'profile-view', 'data-testid': 'profile-view', dataset: {userId: id}},
      v.callSlot, v.card,
      h('div', {class: 'panel'}, h('div', {class: 'panel-head'}, h('h2', null, 'Earlier call cases')), v.casesBody)));
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
        h('span', {class: 'callbar-text'}, h('strong', null, 'In call'), ` with ${fmtPhone(call.phone)}`),
        caseId != null
          ? h('a', {class: 'btn btn-small', href: `#/case/${caseId}`}, `Open case #${caseId}`)
          : [h('a', {class: 'btn btn-small btn-primary', id: 'profile-create-case', 'data-testid': 'profile-create-case',
            href: `#/new-case/${call.id}`}, 'Create a case from this call'),
          hasCases ? h('span', {class: 'muted small'}, 'or attach the call to one of the cases below') : null]));
    }
    if (v.cases) renderProfileCases(v);
  }

  function renderProfileCard(v) {
    const u = v.user;
    const rows = [
      ['Email', u.email], ['Company', u.company],
      ['Phones', (u.phones || []).map(fmtPhone).join(', ')], ['Note', u.note],
      ...Object.entries(u.custom_fields || {}).map(([k, val]) => [k, val]),
    ];
    const edit = h('button', {class: 'btn btn-small', type: 'button', id: 'profile-edit', onclick: () => editProfile(v)}, 'Edit user');
    v.card.replaceChildren(h('div', {class: 'panel-body'},
      h('div', {class: 'profile-head'},
        h('div', {class: 'avatar', 'aria-hidden': 'true'}, (userName(u) || '?').trim().charAt(0).toUpperCase()),
        h('div', null, h('h1', {id: 'profile-name', 'data-testid': 'profile-name'}, u.full_name || 'Unnamed user'),
          h('p', {class: 'muted small'}, `User #${u.id}`)),
        h('div', {class: 'view-tools'}, edit)),
      h('dl', {class: 'fields'}, rows.map(([k, val]) => [h('dt', null, k),
        h('dd', {dataset: {field: k}}, val == null || val === '' ? h('span', {class: 'muted'}, '—') : String(val))]))));
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
    input('full_name', 'Full name', u.full_name), input('email', 'Email', u.email),
    input('company', 'Company', u.company), input('note', 'Note', u.note, true), err,
    h('div', {class: 'form-actions'},
      h('button', {class: 'btn btn-primary', type: 'submit'}, 'Save'),
      h('button', {class: 'btn', type: 'button', onclick: () => renderProfileCard(v)}, 'Cancel')));
    v.card.replaceChildren(h('div', {class: 'panel-body'}, h('h2', null, 'Edit user'), form));
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
      : h('p', {class: 'empty'}, 'No earlier call cases.'));
  }

  // ---- the case form of a call (R8, R10) ---------------------------------------------------

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
      value: saved.subject || '', placeholder: 'What is the call about?', required: true});
    const summary = h('textarea', {id: 'case-summary', 'data-testid': 'case-summary', rows: 7,
      value: saved.summary || '', placeholder: 'The gist of the conversation, so nobody has to listen to the recording'});
    const state = h('span', {id: 'draft-state', class: 'draft-state muted small', 'data-testid': 'draft-state', 'aria-live': 'polite'});
    const create = h('button', {id: 'case-create', 'data-testid': 'case-create', class: 'btn btn-primary', type: 'submit'}, 'Create');
    const err = h('div', {id: 'case-form-error'});
    const v = {name: 'new-case', seq, callId, subject, summary, state, create, err, caller: h('div', {class: 'caller-line', id: 'case-form-caller'})};
    S.view = v;
    const onState = (st, e) => {
      if (S.view !== v) return;
      state.dataset.state = st;
      state.textContent = {pending: 'Draft…', saving: 'Saving draft…', saved: 'Draft saved', error: `Draft not saved: ${e && e.message}`}[st];
    };
    const typed = () => scheduleDraft(callId, {subject: subject.value, summary: summary.value}, onState);
    subject.addEventListener('input', typed);
    summary.addEventListener('input', typed);
    const form = h('form', {id: 'case-form', 'data-testid': 'case-form', class: 'form-grid',
      onsubmit: (e) => { e.preventDefault(); createCase(v); }},
    h('label', {for: 'case-subject'}, 'Subject'), subject,
    h('label', {for: 'case-summary'}, 'Call summary'), summary,
    err,
    h('div', {class: 'form-actions'}, create, state));
    mount(h('section', {class: 'view', id: 'case-form-view', 'data-testid': 'case-form-view', dataset: {callId}},
      h('div', {class: 'view-head'}, h('h1', null, 'New case from the call')),
      h('div', {class: 'panel'}, h('div', {class: 'panel-body'}, v.caller, form))));
    renderFormCaller(v);
    subject.focus();
  }

  function renderFormCaller(v) {
    const live = S.calls.get(v.callId);
    if (live) v.lastCall = {...live};
    const call = live || v.lastCall;
    const parts = [h('span', {class: 'callbar-icon'}, phoneIcon())];
    if (!live) parts.push(h('span', {class: 'badge status-closed'}, v.ended ? 'Call ended' : 'Not live here'));
    if (!call) {
      parts.push(h('span', null, `Call ${v.callId}`));
    } else if (call.userId != null) {
      const u = S.users.get(call.userId);
      if (!u) getUser(call.userId).then(() => { if (S.view === v) renderFormCaller(v); }).catch(() => {});
      parts.push(h('span', null, 'User: ', h('strong', null, u ? userName(u) : `#${call.userId}`), ` · ${fmtPhone(call.phone)} `),
        h('a', {href: `#/user/${call.userId}?call=${v.callId}`, id: 'case-form-profile'}, 'Go to the user’s profile'));
    } else {
      parts.push(h('span', null, h('strong', null, 'Unknown caller'), ` ${fmtPhone(call.phone)}`));
      if (live) {
        parts.push(h('span', null, ' · a new user with this number is created with the case. '),
          h('a', {href: `#/users?link=${v.callId}`}, 'Find a user to link instead'));
      }
    }
    v.caller.replaceChildren(...parts);
  }

  async function createCase(v) {
    if (!v.subject.value.trim()) {
      v.err.replaceChildren(errorBox({message: 'Type a subject for the case.', title: 'Subject needed.'}));
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

  /** The call ended before "Create": the case is made from the draft by the service (R10, R12). */
  /** The call ended with the form open: what was typed becomes a case (R23a) when the call
   *  is decided, a little after its end; the decision may have come already (a reconnect). */
  async function formCallEnded(v, caseIds) {
    if (v.ended) return;
    v.ended = true;
    renderFormCaller(v);
    v.create.disabled = true;
    v.endedBox = h('div', {class: 'alert alert-info', 'data-testid': 'form-call-ended'},
      h('strong', null, 'The call has ended.'), ' A case is created from what you typed; ');
    v.err.replaceChildren(v.endedBox);
    let ids = caseIds;
    if (!ids.length) {
      try {
        ids = (await api('GET', `/api/v1/calls/${v.callId}`)).case_ids || [];
      } catch {
        ids = [];
      }
    }
    if (ids.length) formCasesReady(v, ids);
    else if (S.view === v && !v.ready) v.endedBox.append(h('span', {'data-testid': 'form-ended-wait'}, 'it appears here in a moment.'));
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
    v.endedBox.append(...ids.map((id) => h('a', {href: `#/case/${id}`, 'data-testid': 'form-ended-case'}, `open case #${id}`)));
  }

  // ---- the case page -----------------------------------------------------------------------

  function showCase(id, q, seq) {
    const v = {name: 'case', id, seq, attachCallId: q.get('attach'), msgEls: new Map(), case: null, user: null};
    S.view = v;
    v.header = h('div', {class: 'case-header panel'}, h('div', {class: 'panel-body'}, h('p', {class: 'muted'}, `Loading case #${id}…`)));
    v.dialSlot = h('div', {id: 'dial-slot'});
    v.attachSlot = h('div', {id: 'attach-slot'});
    v.msgs = h('ol', {id: 'messages', class: 'messages', 'data-testid': 'messages'});
    v.empty = h('p', {class: 'empty', hidden: true}, 'No messages yet.');
    mount(h('section', {class: 'view', id: 'case-view', 'data-testid': 'case-view', dataset: {caseId: id}},
      h('p', {class: 'crumbs'}, h('a', {href: '#/cases'}, '← All cases')),
      v.header, v.dialSlot, v.attachSlot,
      h('div', {class: 'panel'},
        h('div', {class: 'panel-head'}, h('h2', null, 'Conversation')),
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
      else if (S.view === v) toast(`Could not refresh the case: ${err.message}`, 'error');
    } finally {
      v.busy = false;
      if (v.again && S.view === v) { v.again = false; refreshCase(v); }
    }
  }

  function renderCaseHeader(v) {
    const c = v.case;
    const status = h('select', {id: 'case-status', 'data-testid': 'case-status', 'aria-label': 'Status',
      class: `status-select status-${c.status}`, onchange: () => changeStatus(v, status)},
    Object.entries(STATUS_LABELS).map(([k, label]) => h('option', {value: k}, label)));
    status.value = c.status;
    const dialBusy = S.dial && S.dial.caseId === v.id && ['starting', 'dialing', 'connected'].includes(S.dial.phase);
    const callBtn = h('button', {id: 'case-call', 'data-testid': 'case-call', class: 'btn btn-call', type: 'button',
      disabled: dialBusy || c.user_id == null, title: c.user_id == null ? 'The case has no user to call' : 'Call the user',
      onclick: () => dialFromCase(v)}, phoneIcon(), 'Call');
    const user = v.user;
    v.header.replaceChildren(h('div', {class: 'panel-body'},
      h('div', {class: 'case-title-row'},
        caseIcon(c.call_icon),
        h('h1', {id: 'case-title', 'data-testid': 'case-title'}, c.subject),
        h('div', {class: 'view-tools'}, callBtn)),
      h('div', {class: 'case-meta'},
        h('div', {class: 'meta-item'}, h('span', {class: 'meta-label'}, 'Case'), h('span', null, `#${c.id}`)),
        h('div', {class: 'meta-item'}, h('label', {class: 'meta-label', for: 'case-status'}, 'Status'), status),
        h('div', {class: 'meta-item'}, h('span', {class: 'meta-label'}, 'Assignee'),
          h('span', {id: 'case-assignee', 'data-testid': 'case-assignee'}, staffName(c.assignee_id))),
        h('div', {class: 'meta-item'}, h('span', {class: 'meta-label'}, 'User'),
          c.user_id == null ? h('span', {class: 'muted'}, 'None')
            : h('a', {href: `#/user/${c.user_id}`, id: 'case-user', 'data-testid': 'case-user'},
              user ? userName(user) : `User #${c.user_id}`,
              user && user.full_name && user.phones && user.phones.length
                ? h('span', {class: 'muted'}, ` · ${fmtPhone(user.phones[0])}`) : null)),
        h('div', {class: 'meta-item'}, h('span', {class: 'meta-label'}, 'Created'), h('span', null, fmtTime(c.created_at))),
        h('div', {class: 'meta-item'}, h('span', {class: 'meta-label'}, 'Updated'), h('span', null, fmtTime(c.updated_at))))));
  }

  async function changeStatus(v, select) {
    const before = v.case.status;
    select.disabled = true;
    try {
      const updated = await api('PATCH', `/api/v1/cases/${v.id}`, {status: select.value});
      v.case = {...v.case, ...updated};
      toast(`Status: ${STATUS_LABELS[updated.status] || updated.status}`, 'success');
      if (S.view === v) renderCaseHeader(v);
    } catch (err) {
      select.value = before;
      toast(`Status not changed: ${err.message}`, 'error');
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
      const sig = JSON.stringify(m);
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

  function messageEl(m) {
    const kindLabel = {reply: 'Reply', note: 'Internal note', call: 'Call'}[m.kind] || m.kind;
    const author = m.author_staff_id != null ? staffName(m.author_staff_id) : m.kind === 'call' ? 'Telephony' : 'User';
    let callBlock = null;
    if (m.call) {
      const c = m.call;
      const outcome = OUTCOME_LABELS[c.outcome] || c.outcome;
      callBlock = h('div', {class: `call-info outcome-${c.outcome}`, 'data-testid': 'call-info',
        dataset: {outcome: c.outcome, callId: c.call_session_id}},
      h('div', {class: 'call-line'},
        h('span', {class: `call-badge ${c.outcome}`}, phoneIcon()),
        h('span', {class: 'call-direction', 'data-testid': 'call-direction'}, c.direction === 'out' ? 'Outgoing call' : 'Incoming call'),
        h('span', {class: 'sep'}, '·'),
        h('span', {class: 'call-outcome', 'data-testid': 'call-outcome'},
          c.outcome === 'in_progress' ? h('span', {class: 'live-dot', 'aria-hidden': 'true'}) : null, outcome),
        c.outcome !== 'in_progress' && c.outcome !== 'missed' && c.outcome !== 'attempt'
          ? [h('span', {class: 'sep'}, '·'), h('span', {class: 'call-talk', 'data-testid': 'call-talk'}, `Talk time ${fmtDuration(c.talk_seconds)}`)]
          : null),
      (c.recording_urls || []).length
        ? h('div', {class: 'recordings'}, c.recording_urls.map((url, i) => h('div', {class: 'recording'},
          h('audio', {controls: true, preload: 'none', src: url, 'data-testid': 'recording'}),
          h('a', {href: url, target: '_blank', rel: 'noopener', class: 'small'},
            c.recording_urls.length > 1 ? `Recording ${i + 1}` : 'Download'))))
        : c.outcome === 'answered' ? h('p', {class: 'muted small'}, 'The recording is not available yet.') : null);
    }
    const body = m.body ? h('div', {class: 'message-body', 'data-testid': 'message-body'}, m.body)
      : m.kind === 'call' ? null : h('div', {class: 'message-body muted'}, '(empty)');
    return h('li', {class: `message kind-${m.kind}`, 'data-testid': 'message', dataset: {kind: m.kind, messageId: m.id}},
      h('div', {class: 'message-meta'},
        h('span', {class: 'author'}, author),
        h('span', {class: `kind-tag kind-${m.kind}`}, kindLabel),
        h('time', {datetime: m.created_at}, fmtTime(m.created_at))),
      callBlock, body);
  }

  function replyForm(v) {
    const body = h('textarea', {id: 'reply-body', 'data-testid': 'reply-body', rows: 4, placeholder: 'Write a reply to the user or an internal note'});
    const kind = h('select', {id: 'reply-kind', 'data-testid': 'reply-kind', 'aria-label': 'Kind'},
      h('option', {value: 'reply'}, 'Reply'), h('option', {value: 'note'}, 'Internal note'));
    const send = h('button', {id: 'reply-send', 'data-testid': 'reply-send', class: 'btn btn-primary', type: 'submit'}, 'Send');
    const err = h('div');
    kind.addEventListener('change', () => {
      send.textContent = kind.value === 'note' ? 'Add note' : 'Send';
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

  // ---- attaching the current call to the case (R9) ----------------------------------------

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
      value: saved.summary || '', placeholder: 'The gist of the call'});
    const state = h('span', {class: 'draft-state muted small', 'data-testid': 'attach-draft-state'});
    summary.addEventListener('input', () => scheduleDraft(callId, {summary: summary.value}, (st) => {
      state.textContent = st === 'saved' ? 'Draft saved' : st === 'error' ? 'Draft not saved' : '';
    }));
    const submit = h('button', {id: 'attach-submit', 'data-testid': 'attach-submit', class: 'btn btn-primary', type: 'submit'}, 'Attach the call');
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
        v.attachSlot.replaceChildren(h('div', {class: 'alert alert-success', 'data-testid': 'attach-done'},
          'The call is recorded in this case; its recording is attached when the call ends.'));
        callsChanged();
        refreshCase(v);
      } catch (ex) {
        submit.disabled = false;
        err.replaceChildren(errorBox(ex));
      }
    }},
    h('label', {for: 'attach-summary'}, 'Call summary'), summary, err,
    h('div', {class: 'form-actions'}, submit, state));
    const toggle = h('button', {id: 'attach-open', 'data-testid': 'attach-open', class: 'btn btn-link', type: 'button', hidden: open,
      onclick: () => { form.hidden = false; toggle.hidden = true; summary.focus(); }}, 'Record the current call in this case');
    v.attachSlot.replaceChildren(h('div', {class: 'panel attach-panel', id: 'attach-panel', 'data-testid': 'attach-panel', dataset: {callId}},
      h('div', {class: 'panel-body'},
        h('div', {class: 'callbar-inline'}, h('span', {class: 'callbar-icon'}, phoneIcon()),
          h('strong', null, 'Current call'), call && call.phone ? ` with ${fmtPhone(call.phone)}` : '',
          h('span', {class: 'spacer'}), toggle,
          h('a', {class: 'btn btn-link', href: call && call.userId != null ? `#/user/${call.userId}?call=${callId}` : `#/users?link=${callId}`},
            'Back to the user’s profile')),
        form)));
    if (open) summary.focus();
  }

  // ---- calling the user from the case (R18–R20) -------------------------------------------

  async function dialFromCase(v) {
    const dial = {caseId: v.id, callId: null, externalId: null, phase: 'starting', error: null,
      phone: v.user && v.user.phones ? v.user.phones[0] : null};
    S.dial = dial;
    renderDial();
    renderCaseHeader(v);
    renderCorner();
    try {
      const res = await api('POST', `/api/v1/cases/${v.id}/calls`, {});
      if (S.dial !== dial) return;
      dial.callId = dial.callId ?? res.call_session_id;
      dial.externalId = res.external_id;
      if (dial.phase === 'starting') dial.phase = 'dialing';
    } catch (err) {
      if (S.dial !== dial) return;
      dial.phase = 'error';
      dial.error = err;
    }
    renderDial();
    if (S.view && S.view.name === 'case' && S.view.case) renderCaseHeader(S.view);
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
    renderDial();
    const v = S.view;
    if (v && v.name === 'case' && v.case && v.id === d.caseId) renderCaseHeader(v);
    renderCorner();
  }

  function dialEnded(dial) {
    dial.phase = 'ended';
    renderDial();
    renderCorner();
    const v = S.view;
    if (v && v.name === 'case' && v.id === dial.caseId) refreshCase(v);
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
    if (error.status !== 502) return 'The call was not started.';
    return NO_ANSWER_FROM_UIS.has(error.code) ? 'No usable answer from UIS.' : 'UIS refused the call.';
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
      d.summary = h('textarea', {id: 'dial-summary', 'data-testid': 'dial-summary', rows: 3, placeholder: 'The gist of the call'});
      d.save = h('button', {id: 'dial-attach', 'data-testid': 'dial-attach', class: 'btn btn-primary', type: 'button',
        onclick: () => saveDialSummary(d)}, 'Save the summary');
      d.saveState = h('span', {class: 'muted small', 'data-testid': 'dial-attach-state'});
      d.el = h('div', {class: 'panel dial-block', id: 'dial-block', 'data-testid': 'dial-block'});
    }
    d.el.dataset.phase = d.phase;
    const text = {
      starting: 'Starting the call…',
      dialing: 'Dialing…',
      connected: 'In call',
      ended: 'Call ended',
      error: 'The call could not be started',
    }[d.phase];
    const hint = {
      starting: 'Asking the telephony to connect you.',
      dialing: `Your phone rings first: pick it up and you are connected to ${d.phone ? fmtPhone(d.phone) : 'the user'}.`,
      connected: 'Type what the call is about; it is added to the case with the recording.',
      ended: 'The case shows the call when its result arrives.',
      error: '',
    }[d.phase];
    const parts = [
      h('div', {class: 'dial-head'},
        h('span', {class: `dial-icon ${d.phase}`}, phoneIcon()),
        h('div', null,
          h('div', {class: 'dial-status', id: 'dial-status', 'data-testid': 'dial-status'}, text),
          hint ? h('div', {class: 'muted small'}, hint) : null),
        d.phase === 'error' || d.phase === 'ended'
          ? h('button', {class: 'popup-close', type: 'button', 'aria-label': 'Close', onclick: () => { S.dial = null; renderDial(); }}, '×')
          : null),
    ];
    if (d.phase === 'error') {
      parts.push(h('div', {class: 'alert alert-error', id: 'dial-error', 'data-testid': 'dial-error', role: 'alert',
        dataset: {code: d.error.code}},
      h('strong', null, dialErrorTitle(d.error)), ' ',
      h('span', {'data-testid': 'dial-error-message'}, d.error.message),
      h('span', {class: 'code'}, ` (${d.error.code})`)));
    }
    if (d.phase === 'connected' || (d.phase === 'ended' && d.saved)) {
      parts.push(h('div', {class: 'form-grid dial-form'},
        h('label', {for: 'dial-summary'}, 'Call summary'), d.summary,
        h('div', {class: 'form-actions'}, d.save, d.saveState)));
      d.save.disabled = !!d.saved || d.phase !== 'connected';
      d.summary.disabled = !!d.saved;
    }
    d.el.replaceChildren(...parts);
    if (v.dialSlot.firstChild !== d.el) v.dialSlot.replaceChildren(d.el);
  }

  async function saveDialSummary(d) {
    d.save.disabled = true;
    d.saveState.textContent = 'Saving…';
    try {
      await api('POST', `/api/v1/calls/${d.callId}/attach`, {case_id: d.caseId, summary: d.summary.value});
      d.saved = true;
      d.saveState.textContent = 'Saved to the case';
      renderDial();
      const v = S.view;
      if (v && v.name === 'case' && v.id === d.caseId) refreshCase(v);
    } catch (err) {
      d.save.disabled = false;
      d.saveState.textContent = `Not saved: ${err.message}`;
    }
  }

  // ---- start --------------------------------------------------------------------------------

  $('signin-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', () => signOut());
  window.addEventListener('hashchange', route);
  window.addEventListener('online', () => { if (S.token && !S.ws) connect(); });
  if (S.token) start();
  else showSignedIn(false);
})();
