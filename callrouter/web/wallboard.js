/* The live wallboard of callrouter (R31): plain JavaScript, no build step, no libraries.
 *
 * Token: `?token=` in the URL (for a wall screen's bookmark) or the sign-in box; kept in
 * localStorage. It reads `GET /api/v1/wallboard` once, then follows the
 * `GET /api/v1/wallboard/events?token=` WebSocket (a full snapshot on connect, a new one on
 * every change), reconnecting with backoff. The longest wait ticks every second here, between
 * the server's snapshots. With the admin token the staff table shows names (`GET
 * /api/v1/staff`) and the service-level threshold comes from `GET /api/v1/settings`.
 */
'use strict';

(() => {
  const TOKEN_KEY = 'callrouter.wallboard.token';
  const BACKOFF_S = [1, 2, 4, 8, 15, 30];
  const NAMES_REFRESH_MS = 30000; // unknown staff ids make the names be read again, at most this often
  const STATE_ORDER = {talking: 0, ringing: 1, free: 2, offline: 3};

  const S = {
    token: null,
    ws: null,
    attempts: 0,
    retryTimer: null,
    snapshot: null,
    receivedAt: 0, // performance.now() when `snapshot` arrived
    names: new Map(), // staff id -> full name (admin token only)
    namesAllowed: true,
    namesReadAt: -Infinity,
    slSeconds: 20,
    tz: undefined, // the account's time zone ("today" is its day); the browser's until known
    lastChartKey: '',
  };

  const $ = (id) => document.getElementById(id);

  // ---- formatting ----------------------------------------------------------------------

  function clockText(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, '0');
    return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
  }

  const NONE = '—'; // no figure yet (no answered call today)

  function duration(seconds) {
    return seconds === null || seconds === undefined ? NONE : clockText(Math.round(seconds));
  }

  function percent(share) {
    return share === null || share === undefined ? NONE : `${Math.round(share * 100)}%`;
  }

  function setFigure(id, text) {
    setText(id, text);
    $(id).classList.toggle('none', text === NONE);
  }

  function zoned(options) {
    try {
      return new Intl.DateTimeFormat('en-GB', {...options, timeZone: S.tz});
    } catch {
      return new Intl.DateTimeFormat('en-GB', options); // an unknown zone: the browser's
    }
  }

  function accountHour(now) {
    return Number(zoned({hour: '2-digit', hourCycle: 'h23'}).format(now)) % 24;
  }

  function setText(id, text) {
    const el = $(id);
    if (el.textContent !== text) el.textContent = text;
  }

  // ---- HTTP ----------------------------------------------------------------------------

  async function api(path, token) {
    const resp = await fetch(path, {headers: {Authorization: `Bearer ${token}`, Accept: 'application/json'}});
    let body = null;
    try {
      body = await resp.json();
    } catch {
      body = null;
    }
    return {status: resp.status, body};
  }

  // ---- signing in ----------------------------------------------------------------------

  function tokenFromUrl() {
    return new URLSearchParams(location.search).get('token');
  }

  function showSignIn(message) {
    document.body.classList.add('signed-out');
    const err = $('signin-error');
    err.textContent = message || '';
    err.hidden = !message;
    $('signin-token').focus();
  }

  async function signIn(token, fromBox) {
    $('signin-submit').disabled = true;
    try {
      const resp = await api('/api/v1/wallboard', token);
      if (resp.status === 401 || resp.status === 403) {
        if (!fromBox) localStorage.removeItem(TOKEN_KEY);
        showSignIn('This token was refused. Paste a valid admin or staff token.');
        return;
      }
      if (resp.status !== 200) throw new Error(`HTTP ${resp.status}`);
      S.token = token;
      localStorage.setItem(TOKEN_KEY, token);
      $('signin-token').value = '';
      document.body.classList.remove('signed-out');
      render(resp.body);
      loadNames(true);
      loadSettings();
      connect();
    } catch (err) {
      // The service is unreachable: keep trying, the screen must come back by itself.
      S.token = token;
      document.body.classList.remove('signed-out');
      setConn('offline', 'Service unreachable');
      retryLater();
    } finally {
      $('signin-submit').disabled = false;
    }
  }

  function signOut() {
    const ws = S.ws;
    S.ws = null;
    if (ws) ws.close(1000, 'signed out');
    clearTimeout(S.retryTimer);
    S.token = null;
    S.snapshot = null;
    S.names.clear();
    S.namesAllowed = true; // the next token may be the admin's
    S.namesReadAt = -Infinity;
    localStorage.removeItem(TOKEN_KEY);
    if (tokenFromUrl()) {
      const url = new URL(location.href);
      url.searchParams.delete('token');
      history.replaceState(null, '', url);
    }
    setConn('offline');
    showSignIn('');
  }

  async function loadNames(force) {
    if (!S.token || !S.namesAllowed) return;
    const now = performance.now();
    if (!force && now - S.namesReadAt < NAMES_REFRESH_MS) return;
    S.namesReadAt = now;
    const names = new Map();
    for (let offset = 0; ; offset += 500) {
      let resp;
      try {
        resp = await api(`/api/v1/staff?limit=500&offset=${offset}`, S.token);
      } catch {
        return;
      }
      if (resp.status === 403) {
        S.namesAllowed = false; // a staff token: ids only
        return;
      }
      if (resp.status !== 200) return;
      for (const staff of resp.body.items) names.set(staff.id, staff.full_name);
      if (!resp.body.items.length || offset + resp.body.items.length >= resp.body.total) break;
    }
    S.names = names;
    if (S.snapshot) renderStaff(S.snapshot);
  }

  async function loadSettings() {
    try {
      const resp = await api('/api/v1/settings', S.token);
      if (resp.status === 200 && Number.isFinite(resp.body.service_level_seconds)) {
        S.slSeconds = resp.body.service_level_seconds;
      }
      if (resp.status === 200 && typeof resp.body.timezone === 'string') S.tz = resp.body.timezone;
    } catch {
      /* the default threshold will do */
    }
    setText('sl-hint', `≤ ${S.slSeconds} s`);
    tick();
    if (S.snapshot) {
      render(S.snapshot);
      renderChart(S.snapshot.by_hour || [], true);
    }
  }

  // ---- the live stream -----------------------------------------------------------------

  function eventsUrl(token) {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    return `${scheme}://${location.host}/api/v1/wallboard/events?token=${encodeURIComponent(token)}`;
  }

  function setConn(state, text) {
    const el = $('conn');
    el.dataset.state = state;
    setText('conn-text', text || {live: 'Live', connecting: 'Connecting…', offline: 'Offline'}[state]);
    $('board').classList.toggle('stale', state !== 'live' && S.snapshot !== null);
  }

  function connect() {
    clearTimeout(S.retryTimer);
    if (!S.token) return;
    setConn('connecting');
    const ws = new WebSocket(eventsUrl(S.token));
    S.ws = ws;
    let heard = false;
    ws.onmessage = (msg) => {
      if (S.ws !== ws) return;
      let data;
      try {
        data = JSON.parse(msg.data);
      } catch {
        return;
      }
      if (data.type !== 'wallboard') return;
      if (!heard) {
        heard = true;
        S.attempts = 0;
        setConn('live');
      }
      render(data);
    };
    ws.onclose = () => {
      if (S.ws !== ws) return;
      S.ws = null;
      if (!heard) checkToken();
      retryLater();
    };
  }

  async function checkToken() {
    // A refused upgrade tells the page nothing: ask the API whether the token still works.
    const token = S.token;
    try {
      const resp = await api('/api/v1/wallboard', token);
      if ((resp.status === 401 || resp.status === 403) && S.token === token) {
        signOut();
        showSignIn('This token is no longer accepted. Sign in again.');
      }
    } catch {
      /* unreachable: the retry will tell */
    }
  }

  function retryLater() {
    if (!S.token) return;
    clearTimeout(S.retryTimer);
    const base = BACKOFF_S[Math.min(S.attempts, BACKOFF_S.length - 1)];
    S.attempts += 1;
    const wait = base * (0.8 + Math.random() * 0.4); // jitter: many screens must not reconnect in step
    const until = performance.now() + wait * 1000;
    const countdown = () => {
      const left = Math.ceil((until - performance.now()) / 1000);
      if (left > 0) setConn('offline', `Reconnecting in ${left} s`);
    };
    countdown();
    S.retryTimer = setTimeout(() => {
      if (S.snapshot) connect();
      else signIn(S.token, false);
    }, wait * 1000);
    S.countdown = countdown;
  }

  // ---- rendering -----------------------------------------------------------------------

  function render(snapshot) {
    if (!snapshot) return;
    S.snapshot = snapshot;
    S.receivedAt = performance.now();
    setText('ringing', String(snapshot.ringing));
    $('tile-ringing').classList.toggle('on', snapshot.ringing > 0);
    setText('talking', String(snapshot.talking));
    for (const k of ['free', 'ringing', 'talking', 'offline']) setText(`staff-${k}`, String(snapshot.staff[k]));
    const today = snapshot.today;
    setText('answered', String(today.answered));
    setText('missed', String(today.missed));
    $('tile-missed').classList.toggle('on', today.missed > 0);
    setFigure('service-level', percent(today.service_level));
    const sl = $('tile-sl');
    const share = today.service_level;
    sl.classList.toggle('good', share !== null && share >= 0.8);
    sl.classList.toggle('fair', share !== null && share >= 0.6 && share < 0.8);
    sl.classList.toggle('poor', share !== null && share < 0.6);
    setFigure('asa', duration(today.avg_answer_seconds));
    setFigure('avg-talk', duration(today.avg_talk_seconds));
    tickWait();
    renderStaff(snapshot);
    renderChart(snapshot.by_hour || []);
    if (S.namesAllowed && snapshot.per_staff.some((row) => !S.names.has(row.staff_id))) loadNames(false);
  }

  function tickWait() {
    const snap = S.snapshot;
    if (!snap) return;
    let wait = 0;
    if (snap.ringing > 0 && snap.longest_wait_seconds > 0) {
      // Between snapshots the caller keeps waiting: count on locally.
      wait = snap.longest_wait_seconds + (performance.now() - S.receivedAt) / 1000;
    }
    setText('longest-wait', snap.ringing > 0 ? clockText(wait) : '0:00');
    const tile = $('tile-wait');
    tile.classList.toggle('warn', wait > 0 && wait <= S.slSeconds);
    tile.classList.toggle('alert', wait > S.slSeconds);
  }

  function staffName(id) {
    return S.names.get(id) || `Staff #${id}`;
  }

  function renderStaff(snapshot) {
    const rows = [...snapshot.per_staff].sort((a, b) =>
      (STATE_ORDER[a.state] ?? 9) - (STATE_ORDER[b.state] ?? 9)
      || (b.answered + b.missed) - (a.answered + a.missed)
      || staffName(a.staff_id).localeCompare(staffName(b.staff_id)));
    const body = $('staff-rows');
    const made = rows.map((row) => {
      const tr = document.createElement('tr');
      tr.className = `row-${row.state}`;
      tr.dataset.staffId = String(row.staff_id);
      const cells = [
        ['c-name', staffName(row.staff_id)],
        ['c-state', null],
        ['c-num', String(row.answered)],
        ['c-num' + (row.missed ? ' missed-some' : ''), String(row.missed)],
        ['c-num', clockText(row.talk_seconds)],
      ];
      for (const [cls, text] of cells) {
        const td = document.createElement('td');
        td.className = cls;
        if (text === null) {
          const pill = document.createElement('span');
          pill.className = `state state-${row.state}`;
          pill.textContent = row.state;
          td.append(pill);
        } else {
          td.textContent = text;
        }
        if (cls === 'c-name') td.title = text;
        tr.append(td);
      }
      return tr;
    });
    if (!made.length) {
      const tr = document.createElement('tr');
      tr.className = 'empty';
      const td = document.createElement('td');
      td.colSpan = 5;
      td.textContent = 'No staff yet';
      tr.append(td);
      made.push(tr);
    }
    body.replaceChildren(...made);
    fitRows(body, made.length);
  }

  function fitRows(body, total) {
    // A wall screen cannot scroll: show the rows that fit and say how many more there are.
    const wrap = $('staff-wrap');
    if (wrap.scrollHeight <= wrap.clientHeight) return;
    const more = document.createElement('tr');
    more.className = 'more';
    const td = document.createElement('td');
    td.colSpan = 5;
    more.append(td);
    body.append(more);
    let hidden = 0;
    while (wrap.scrollHeight > wrap.clientHeight && body.rows.length > 1) {
      body.rows[body.rows.length - 2].remove();
      hidden += 1;
      td.textContent = `+ ${hidden} more`;
    }
    if (hidden === 0 || hidden === total) more.remove();
  }

  const SVG = 'http://www.w3.org/2000/svg';

  function svg(tag, attrs, text) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function niceMax(value) {
    // Four grid steps of 1, 2 or 5 × 10^k: whole numbers on the axis.
    const rough = Math.max(1, value / 4);
    const power = Math.pow(10, Math.floor(Math.log10(rough)));
    const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough);
    return 4 * step;
  }

  function renderChart(byHour, force) {
    const box = $('chart');
    const width = box.clientWidth;
    const height = box.clientHeight;
    const hour = accountHour(new Date());
    const key = JSON.stringify([byHour, width, height, hour]);
    if (!force && key === S.lastChartKey) return;
    S.lastChartKey = key;
    if (width < 50 || height < 50) {
      box.replaceChildren();
      return;
    }
    const fontPx = parseFloat(getComputedStyle(box).fontSize) || 16;
    const left = 3.2 * fontPx;
    const bottom = 2.0 * fontPx;
    const top = 1.4 * fontPx;
    const right = 0.5 * fontPx;
    const plotW = width - left - right;
    const plotH = height - top - bottom;
    const peak = Math.max(0, ...byHour.map((h) => Math.max(h.answered, h.missed)));
    const max = niceMax(peak);
    const y = (v) => top + plotH - (v / max) * plotH;
    const slot = plotW / 24;
    const barW = Math.max(2, slot * 0.4);
    const root = svg('svg', {viewBox: `0 0 ${width} ${height}`, role: 'img',
      'aria-label': 'Answered and missed calls per hour today'});
    root.append(svg('rect', {class: 'now-band', x: left + hour * slot, y: top, width: slot, height: plotH}));
    for (let i = 0; i <= 4; i += 1) {
      const v = (max / 4) * i;
      const gy = y(v);
      root.append(svg('line', {class: 'grid', x1: left, x2: width - right, y1: gy, y2: gy}));
      root.append(svg('text', {class: 'axis-label', x: left - 0.5 * fontPx, y: gy + 0.35 * fontPx,
        'text-anchor': 'end'}, String(v)));
    }
    for (const h of byHour) {
      const x0 = left + h.hour * slot + (slot - 2 * barW) / 2;
      for (const [cls, value, x] of [['bar-answered', h.answered, x0], ['bar-missed', h.missed, x0 + barW]]) {
        if (!value) continue;
        const by = y(value);
        const bar = svg('rect', {class: cls, x, y: by, width: barW, height: top + plotH - by, rx: Math.min(3, barW / 3)});
        bar.append(svg('title', {}, `${String(h.hour).padStart(2, '0')}:00 ${cls === 'bar-answered' ? 'answered' : 'missed'} ${value}`));
        root.append(bar);
        if (barW >= 0.9 * fontPx) {
          root.append(svg('text', {class: 'bar-value', x: x + barW / 2, y: by - 0.3 * fontPx,
            'text-anchor': 'middle'}, String(value)));
        }
      }
      if (h.hour % 3 === 0 || h.hour === hour) {
        root.append(svg('text', {
          class: 'axis-label' + (h.hour === hour ? ' now-label' : ''),
          x: left + (h.hour + 0.5) * slot, y: height - 0.55 * fontPx, 'text-anchor': 'middle',
        }, String(h.hour).padStart(2, '0')));
      }
    }
    box.replaceChildren(root);
  }

  // ---- the clock -----------------------------------------------------------------------

  function tick() {
    const now = new Date();
    setText('clock', zoned({hour: '2-digit', minute: '2-digit', hourCycle: 'h23'}).format(now));
    setText('date', zoned({weekday: 'short', day: 'numeric', month: 'short'}).format(now));
    $('clock').dateTime = now.toISOString();
    if (S.snapshot) renderChart(S.snapshot.by_hour || []); // the "now" column moves on the hour
    tickWait();
    if (!S.ws && S.token && S.countdown) S.countdown();
  }

  // ---- start ---------------------------------------------------------------------------

  $('signin-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $('signin-token').value.trim();
    if (token) signIn(token, true);
  });
  $('signout').addEventListener('click', signOut);
  window.addEventListener('resize', () => {
    if (S.snapshot) {
      renderStaff(S.snapshot);
      renderChart(S.snapshot.by_hour || [], true);
    }
  });
  setText('sl-hint', `≤ ${S.slSeconds} s`);
  tick();
  setInterval(tick, 1000);

  const initial = tokenFromUrl() || localStorage.getItem(TOKEN_KEY);
  if (initial) signIn(initial, false);
  else showSignIn('');
})();
