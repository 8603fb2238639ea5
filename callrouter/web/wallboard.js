/* The live wallboard of callrouter (R31): plain JavaScript, no build step, no libraries.
 *
 * Who may look, in order: a read-only link (`?link=` — the admin made it for this screen; it
 * is never stored), a token (`?token=` or the sign-in box at `?signin=token`; kept in
 * localStorage), or the signed-in session (the cookie); with none of them the page goes to
 * `/login`. It reads `GET /api/v1/wallboard` once, then follows the
 * `GET /api/v1/wallboard/events` WebSocket (a full snapshot on connect, a new one on every
 * change), reconnecting with backoff. The longest wait ticks every second here, between the
 * server's snapshots. Names come from the staff directory (deactivated staff are left out);
 * when the team does not fit the screen, the staff table turns its pages every few seconds
 * (`?rotate=<seconds>`). The service-level threshold and the account's time zone come from
 * `GET /api/v1/settings` (readable by every viewer, a wallboard link too).
 */
'use strict';

(() => {
  const TOKEN_KEY = 'callrouter.wallboard.token';
  const BACKOFF_S = [1, 2, 4, 8, 15, 30];
  const NAMES_REFRESH_MS = 30000; // unknown staff ids make the names be read again, at most this often
  const STATE_ORDER = {talking: 0, ringing: 1, free: 2, offline: 3};
  const STATES = ['free', 'ringing', 'talking', 'offline'];
  const t = (key, vars) => I18N.t(key, vars);
  const params = new URLSearchParams(location.search);
  const ROTATE_S = Math.max(2, Number(params.get('rotate')) || 10);

  const S = {
    mode: null, // "link", "token" or "session"
    secret: null, // the link's secret or the token
    ws: null,
    attempts: 0,
    retryTimer: null,
    snapshot: null,
    receivedAt: 0, // performance.now() when `snapshot` arrived
    names: new Map(), // staff id -> full name
    inactive: new Set(), // deactivated staff: not on the board
    namesReadAt: -Infinity,
    slSeconds: 20,
    tz: undefined, // the account's time zone ("today" is its day); the browser's until known
    lastChartKey: '',
    page: 0, // the staff table's page on screen
    pageTurnedAt: 0,
  };

  const $ = (id) => document.getElementById(id);
  const signedIn = () => S.mode !== null;

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

  const LOCALE = I18N.lang === 'ru' ? 'ru-RU' : 'en-GB';

  function zoned(options) {
    try {
      return new Intl.DateTimeFormat(LOCALE, {...options, timeZone: S.tz});
    } catch {
      return new Intl.DateTimeFormat(LOCALE, options); // an unknown zone: the browser's
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

  async function api(path) {
    const headers = {Accept: 'application/json'};
    if (S.secret) headers.Authorization = `Bearer ${S.secret}`; // a link's secret works so too
    const resp = await fetch(path, {headers, credentials: 'same-origin'});
    let body = null;
    try {
      body = await resp.json();
    } catch {
      body = null;
    }
    return {status: resp.status, body};
  }

  // ---- signing in ----------------------------------------------------------------------

  function toLogin() {
    location.replace(`/login?next=${encodeURIComponent(location.pathname)}`);
  }

  function showSignIn(message) {
    document.body.classList.add('signed-out');
    $('signin-form').hidden = false;
    const err = $('signin-error');
    err.textContent = message || '';
    err.hidden = !message;
    $('signin-token').focus();
  }

  /** Show the board as `mode` with `secret` (null for the session) if the service agrees. */
  async function signIn(mode, secret, fromBox) {
    S.mode = mode;
    S.secret = secret;
    $('signin-submit').disabled = true;
    try {
      const resp = await api('/api/v1/wallboard');
      if (resp.status === 401 || resp.status === 403) {
        refused(mode, fromBox);
        return;
      }
      if (resp.status !== 200) throw new Error(`HTTP ${resp.status}`);
      if (mode === 'token') localStorage.setItem(TOKEN_KEY, secret);
      $('signin-token').value = '';
      $('signout').hidden = mode === 'link'; // a wall screen's link is the admin's to revoke
      document.body.classList.remove('signed-out');
      render(resp.body);
      loadNames(true);
      loadSettings();
      connect();
    } catch {
      // The service is unreachable: keep trying, the screen must come back by itself.
      document.body.classList.remove('signed-out');
      setConn('offline', t('conn.unreachable'));
      retryLater();
    } finally {
      $('signin-submit').disabled = false;
    }
  }

  function refused(mode, fromBox) {
    forget();
    if (mode === 'session') toLogin();
    else if (mode === 'link') showSignIn(t('signin.linkRevoked'));
    else {
      if (!fromBox) localStorage.removeItem(TOKEN_KEY);
      showSignIn(t(fromBox ? 'signin.refused' : 'signin.expired'));
    }
  }

  function forget() {
    const ws = S.ws;
    S.ws = null;
    if (ws) ws.close(1000, 'signed out');
    clearTimeout(S.retryTimer);
    S.mode = null;
    S.secret = null;
    S.snapshot = null;
    S.names.clear();
    S.inactive.clear();
    S.namesReadAt = -Infinity;
    setConn('offline');
  }

  async function signOut() {
    const mode = S.mode;
    forget();
    localStorage.removeItem(TOKEN_KEY);
    if (params.has('token')) {
      const url = new URL(location.href);
      url.searchParams.delete('token');
      history.replaceState(null, '', url);
    }
    if (mode === 'session') {
      try {
        await fetch('/api/v1/auth/logout', {method: 'POST', credentials: 'same-origin',
          headers: {'X-Requested-With': 'callrouter', Accept: 'application/json'}});
      } catch {
        /* signed out here all the same */
      }
      toLogin();
      return;
    }
    showSignIn('');
  }

  /** Every staff member's name (the directory; the admin's staff list on an older service). */
  async function loadNames(force) {
    if (!signedIn()) return;
    const now = performance.now();
    if (!force && now - S.namesReadAt < NAMES_REFRESH_MS) return;
    S.namesReadAt = now;
    const names = new Map();
    const inactive = new Set();
    let path = '/api/v1/directory/staff';
    for (let offset = 0; ; offset += 500) {
      let resp;
      try {
        resp = await api(`${path}?limit=500&offset=${offset}`);
        if (resp.status === 404 && offset === 0 && path !== '/api/v1/staff') {
          path = '/api/v1/staff';
          resp = await api(`${path}?limit=500&offset=${offset}`);
        }
      } catch {
        return;
      }
      if (resp.status !== 200) return; // ids it is
      for (const staff of resp.body.items) {
        names.set(staff.id, staff.full_name);
        if (staff.active === false) inactive.add(staff.id);
      }
      if (!resp.body.items.length || offset + resp.body.items.length >= resp.body.total) break;
    }
    S.names = names;
    S.inactive = inactive;
    if (S.snapshot) render(S.snapshot);
  }

  async function loadSettings() {
    try {
      const resp = await api('/api/v1/settings');
      if (resp.status === 200 && Number.isFinite(resp.body.service_level_seconds)) {
        S.slSeconds = resp.body.service_level_seconds;
      }
      if (resp.status === 200 && typeof resp.body.timezone === 'string') S.tz = resp.body.timezone;
    } catch {
      /* the default threshold will do */
    }
    setText('sl-hint', t('sl.hint', {s: S.slSeconds}));
    tick();
    if (S.snapshot) {
      render(S.snapshot);
      renderChart(S.snapshot.by_hour || [], true);
    }
  }

  // ---- the live stream -----------------------------------------------------------------

  function eventsUrl() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const query = S.mode === 'link' ? `?link=${encodeURIComponent(S.secret)}`
      : S.mode === 'token' ? `?token=${encodeURIComponent(S.secret)}` : ''; // else the cookie
    return `${scheme}://${location.host}/api/v1/wallboard/events${query}`;
  }

  function setConn(state, text) {
    const el = $('conn');
    el.dataset.state = state;
    setText('conn-text', text || t(`conn.${state}`));
    $('board').classList.toggle('stale', state !== 'live' && S.snapshot !== null);
  }

  function connect() {
    clearTimeout(S.retryTimer);
    if (!signedIn()) return;
    setConn('connecting');
    const ws = new WebSocket(eventsUrl());
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
      if (!heard) checkAccess();
      retryLater();
    };
  }

  async function checkAccess() {
    // A refused upgrade tells the page nothing: ask the API whether we may still look.
    const mode = S.mode;
    const secret = S.secret;
    try {
      const resp = await api('/api/v1/wallboard');
      if ((resp.status === 401 || resp.status === 403) && S.mode === mode && S.secret === secret) {
        if (mode === 'token') localStorage.removeItem(TOKEN_KEY);
        refused(mode, false);
      }
    } catch {
      /* unreachable: the retry will tell */
    }
  }

  function retryLater() {
    if (!signedIn()) return;
    clearTimeout(S.retryTimer);
    const base = BACKOFF_S[Math.min(S.attempts, BACKOFF_S.length - 1)];
    S.attempts += 1;
    const wait = base * (0.8 + Math.random() * 0.4); // jitter: many screens must not reconnect in step
    const until = performance.now() + wait * 1000;
    const countdown = () => {
      const left = Math.ceil((until - performance.now()) / 1000);
      if (left > 0) setConn('offline', t('conn.retrying', {s: left}));
    };
    countdown();
    S.retryTimer = setTimeout(() => {
      if (S.snapshot) connect();
      else signIn(S.mode, S.secret, false);
    }, wait * 1000);
    S.countdown = countdown;
  }

  // ---- rendering -----------------------------------------------------------------------

  /** The staff on the board: everyone but deactivated members. */
  function shownStaff(snapshot) {
    return snapshot.per_staff.filter((row) => !S.inactive.has(row.staff_id));
  }

  function render(snapshot) {
    if (!snapshot) return;
    S.snapshot = snapshot;
    S.receivedAt = performance.now();
    setText('ringing', String(snapshot.ringing));
    $('tile-ringing').classList.toggle('on', snapshot.ringing > 0);
    setText('talking', String(snapshot.talking));
    // Deactivated members are offline by definition: they leave that count with the table.
    const hidden = snapshot.per_staff.filter((row) => S.inactive.has(row.staff_id));
    for (const k of STATES) {
      const n = snapshot.staff[k] - hidden.filter((row) => row.state === k).length;
      setText(`staff-${k}`, String(Math.max(0, n)));
    }
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
    if (snapshot.per_staff.some((row) => !S.names.has(row.staff_id))) loadNames(false);
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
    return S.names.get(id) || `#${id}`;
  }

  function staffRow(row) {
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
        pill.dataset.state = row.state;
        pill.textContent = STATES.includes(row.state) ? t(`state.${row.state}`) : row.state;
        td.append(pill);
      } else {
        td.textContent = text;
      }
      if (cls === 'c-name') td.title = text;
      tr.append(td);
    }
    return tr;
  }

  /** The staff table: busiest first; a team too large for the screen gets compact rows, then
   * pages that turn every ROTATE_S seconds (a wall screen cannot scroll). */
  function renderStaff(snapshot) {
    const rows = shownStaff(snapshot).sort((a, b) =>
      (STATE_ORDER[a.state] ?? 9) - (STATE_ORDER[b.state] ?? 9)
      || (b.answered + b.missed) - (a.answered + a.missed)
      || staffName(a.staff_id).localeCompare(staffName(b.staff_id)));
    const body = $('staff-rows');
    if (!rows.length) {
      const tr = document.createElement('tr');
      tr.className = 'empty';
      const td = document.createElement('td');
      td.colSpan = 5;
      td.textContent = t('staff.none');
      tr.append(td);
      body.replaceChildren(tr);
      showPage(0, 1);
      return;
    }
    const pages = paginate(body, rows.map(staffRow));
    S.page %= pages.length;
    body.replaceChildren(...pages[S.page]);
    showPage(S.page, pages.length);
  }

  /** The rows split into pages that each fit the table's place, measured as drawn (a long
   * name takes two lines): all on one page at normal size if they fit, else compact rows. */
  function paginate(body, els) {
    const table = body.closest('table');
    const wrap = $('staff-wrap');
    let heights = [];
    let room = 0;
    for (const compact of [false, true]) {
      table.classList.toggle('compact', compact);
      body.replaceChildren(...els);
      room = wrap.clientHeight - table.tHead.getBoundingClientRect().height - 1;
      heights = els.map((el) => el.getBoundingClientRect().height);
      if (heights.reduce((a, b) => a + b, 0) <= room) return [els];
    }
    const pages = [];
    let page = [];
    let used = 0;
    els.forEach((el, i) => {
      if (page.length && used + heights[i] > room) {
        pages.push(page);
        page = [];
        used = 0;
      }
      page.push(el);
      used += heights[i];
    });
    pages.push(page);
    return pages;
  }

  function showPage(page, pages) {
    const mark = $('staff-page');
    mark.hidden = pages <= 1;
    setText('staff-page', t('staff.page', {page: page + 1, pages}));
    mark.title = t('staff.pageTitle', {page: page + 1, pages, s: ROTATE_S});
    mark.dataset.page = String(page + 1);
    mark.dataset.pages = String(pages);
  }

  function turnPage() {
    const pages = Number($('staff-page').dataset.pages || 1);
    if (!S.snapshot || pages <= 1) return;
    S.page = (S.page + 1) % pages;
    renderStaff(S.snapshot);
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
    const root = svg('svg', {viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': t('chart.label')});
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
        const what = t(cls === 'bar-answered' ? 'chart.answered' : 'chart.missed');
        bar.append(svg('title', {}, `${String(h.hour).padStart(2, '0')}:00 ${what} ${value}`));
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
    if (!S.ws && signedIn() && S.countdown) S.countdown();
  }

  // ---- start ---------------------------------------------------------------------------

  I18N.apply(document);
  document.title = t('title');
  $('lang-slot').replaceChildren(I18N.switcher());
  $('signin-lang').replaceChildren(I18N.switcher());
  $('signin-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $('signin-token').value.trim();
    if (token) signIn('token', token, true);
  });
  $('signout').addEventListener('click', signOut);
  window.addEventListener('resize', () => {
    if (S.snapshot) {
      renderStaff(S.snapshot);
      renderChart(S.snapshot.by_hour || [], true);
    }
  });
  setText('sl-hint', t('sl.hint', {s: S.slSeconds}));
  tick();
  setInterval(tick, 1000);
  setInterval(turnPage, ROTATE_S * 1000);

  /** The first load: a link, a token, the session, or the way to sign in. */
  async function boot() {
    const link = params.get('link');
    if (link) {
      signIn('link', link, false);
      return;
    }
    const token = params.get('token') || localStorage.getItem(TOKEN_KEY);
    if (token) {
      signIn('token', token, false);
      return;
    }
    if (params.get('signin') === 'token') {
      showSignIn('');
      return;
    }
    let resp = null;
    try {
      resp = await fetch('/api/v1/wallboard', {credentials: 'same-origin', headers: {Accept: 'application/json'}});
    } catch {
      resp = null;
    }
    if (resp && resp.status === 401) toLogin();
    else if (resp && resp.ok) signIn('session', null, false);
    else showSignIn('');
  }

  boot();
})();
