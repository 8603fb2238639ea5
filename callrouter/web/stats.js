/* The statistics page (`/stats`): the guide's six reports for a period of the account's days.
 *
 * It reads the account's time zone from `GET /api/v1/settings` (periods are its days), the six
 * reports from `GET /api/v1/stats/<report>?from=&to=` (`to` exclusive, as the API reads it;
 * the address bar keeps `?period=` or `?from=&to=` so a reload or a bookmark shows the same
 * period), and the staff names for the team table from `GET /api/v1/directory/staff` (the
 * admin's staff list before that exists; `#id` when neither answers). Each report has a link
 * to the same report as CSV.
 */
import './stats-strings.js';
import {ApiError, download, getJson, signOut, usingToken} from './stats-api.js';
import {barChart} from './stats-chart.js';

const {t, number} = window.I18N;
const lang = window.I18N.lang;
const REPORTS = ['load', 'peak', 'channels', 'response', 'sla', 'team'];
const LOAD_KEYS = ['new_total', 'new_from_users', 'reopened', 'in_work', 'answered', 'closed'];
const CHANNEL_KEYS = ['new_and_reopened', 'in_work', 'closed'];
const MAX_DAYS = 731;
const NAMED_PERIODS = ['today', 'yesterday', 'week', 'month'];

const TEAM_COLUMNS = [
  {key: 'name', title: 'team.staff', text: true},
  {key: 'new_total', title: 'fig.new_total'},
  {key: 'new_from_users', title: 'fig.new_from_users'},
  {key: 'reopened', title: 'fig.reopened'},
  {key: 'in_work', title: 'fig.in_work'},
  {key: 'answered', title: 'fig.answered'},
  {key: 'replies', title: 'fig.replies'},
  {key: 'replies_to_close', title: 'fig.replies_to_close'},
  {key: 'closed', title: 'fig.closed'},
  {key: 'close_time', title: 'fig.close_time', value: (row) => row.close_time && row.close_time.mean_seconds, duration: true},
  {key: 'close_sla_breached', title: 'fig.close_sla_breached'},
];

const S = {
  tz: Intl.DateTimeFormat().resolvedOptions().timeZone, // until the account's is known
  closeSla: null,
  names: new Map(), // staff id -> {name, active}
  period: null, // {kind, from, to}
  seq: 0,
  data: null,
  sort: {key: 'new_total', dir: 'desc'},
};

const $ = (id) => document.getElementById(id);

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined));
  return node;
}

// ---- days of the account -------------------------------------------------------------------

const toDate = (iso) => new Date(`${iso}T00:00:00Z`);
const toIso = (date) => date.toISOString().slice(0, 10);

function addDays(iso, n) {
  const date = toDate(iso);
  date.setUTCDate(date.getUTCDate() + n);
  return toIso(date);
}

function todayIso() {
  let parts;
  try {
    parts = new Intl.DateTimeFormat('en-GB', {timeZone: S.tz, year: 'numeric', month: '2-digit', day: '2-digit'}).formatToParts(new Date());
  } catch {
    parts = new Intl.DateTimeFormat('en-GB', {year: 'numeric', month: '2-digit', day: '2-digit'}).formatToParts(new Date());
  }
  const part = (type) => parts.find((p) => p.type === type).value;
  return `${part('year')}-${part('month')}-${part('day')}`;
}

/** [from, to) of a named period, in the account's days. */
function namedPeriod(kind) {
  const today = todayIso();
  if (kind === 'yesterday') return {kind, from: addDays(today, -1), to: today};
  if (kind === 'week') {
    const monday = addDays(today, -((toDate(today).getUTCDay() + 6) % 7));
    return {kind, from: monday, to: addDays(monday, 7)};
  }
  if (kind === 'month') {
    const first = `${today.slice(0, 8)}01`;
    const next = toDate(first);
    next.setUTCMonth(next.getUTCMonth() + 1);
    return {kind, from: first, to: toIso(next)};
  }
  return {kind: 'today', from: today, to: addDays(today, 1)};
}

const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;

function periodFromUrl() {
  const query = new URLSearchParams(location.search);
  const from = query.get('from');
  const to = query.get('to');
  if (from && to && ISO_DAY.test(from) && ISO_DAY.test(to) && from < to) return {kind: 'custom', from, to};
  const kind = query.get('period');
  return namedPeriod(NAMED_PERIODS.includes(kind) ? kind : 'today');
}

function rangeText({from, to}) {
  const format = new Intl.DateTimeFormat(lang === 'ru' ? 'ru-RU' : 'en-GB', {day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC'});
  const first = toDate(from);
  const last = toDate(addDays(to, -1));
  if (from === addDays(to, -1)) return format.format(first);
  return format.formatRange ? format.formatRange(first, last) : `${format.format(first)} – ${format.format(last)}`;
}

// ---- formatting ----------------------------------------------------------------------------

function duration(seconds) {
  const s = Math.round(seconds);
  const units = [['d', Math.floor(s / 86400)], ['h', Math.floor((s % 86400) / 3600)], ['min', Math.floor((s % 3600) / 60)], ['s', s % 60]];
  const first = units.findIndex(([, n]) => n > 0);
  if (first < 0) return t('unit.s', {n: 0});
  return units.slice(first, first + 2).filter(([, n]) => n > 0).map(([unit, n]) => t(`unit.${unit}`, {n})).join(' ');
}

const fraction = new Intl.NumberFormat(lang === 'ru' ? 'ru-RU' : 'en-GB', {maximumFractionDigits: 2});

function figure(value, {asDuration = false} = {}) {
  if (value === null || value === undefined) return h('span', {class: 'none', title: t('none.hint')}, t('none'));
  return document.createTextNode(asDuration ? duration(value) : fraction.format(value));
}

const notApplicable = () => h('span', {class: 'na'}, t('na'));

/** One figure of a report: label and value, the raw value in `data-value` for tests. */
function row(report, key, label, content, raw, hint) {
  return h('div', {class: 'kv', 'data-testid': `fig-${report}-${key}`, 'data-value': JSON.stringify(raw), title: hint},
    h('dt', {}, label), h('dd', {}, content));
}

function staffName(id) {
  const known = S.names.get(id);
  return known ? known.name : `#${id}`;
}

// ---- the reports ---------------------------------------------------------------------------

function renderLoad(body) {
  $('load-figures').replaceChildren(...LOAD_KEYS.map((key) => h('div', {
    class: 'figure', 'data-testid': `fig-load-${key}`, 'data-value': body[key], title: t(`hint.${key}`),
  }, h('span', {class: 'figure-value'}, number(body[key])), h('span', {class: 'figure-label'}, t(`fig.${key}`)))));
}

function renderPeak(body) {
  const series = (rows, key, className) => ({key, name: t(`fig.${key}`), className, values: rows.map((r) => r[key])});
  const both = (rows) => [series(rows, 'new_and_reopened', 'bar-new'), series(rows, 'in_work', 'bar-work')];
  const pad = (n) => String(n).padStart(2, '0');
  barChart($('chart-hour'), {
    labels: body.by_hour.map((r) => pad(r.hour)),
    titles: body.by_hour.map((r) => t('peak.hour', {from: `${pad(r.hour)}:00`, to: `${pad((r.hour + 1) % 24)}:00`})),
    series: both(body.by_hour),
    empty: t('peak.empty'),
    format: number,
    ariaLabel: t('peak.by_hour'),
  });
  barChart($('chart-weekday'), {
    labels: body.by_weekday.map((r) => t(`weekday.${r.weekday}`)),
    titles: body.by_weekday.map((r) => t(`weekday.long.${r.weekday}`)),
    series: both(body.by_weekday),
    empty: t('peak.empty'),
    format: number,
    ariaLabel: t('peak.by_weekday'),
  });
}

function renderChannels(body) {
  const calls = body.calls;
  $('channels-body').replaceChildren(
    h('h3', {class: 'channel-name', 'data-testid': 'channel-calls'}, t('channel.calls')),
    h('dl', {class: 'kvs'}, CHANNEL_KEYS.map((key) => row('channels', key, t(`fig.${key}`), figure(calls[key]), calls[key]))));
}

function renderResponse(body) {
  const close = body.close_time;
  $('response-body').replaceChildren(h('dl', {class: 'kvs'},
    ['first_response', 'any_response', 'reply_writing'].map((key) => row('response', key, t(`fig.${key}`), notApplicable(), body[key])),
    row('response', 'replies_to_close', t('fig.replies_to_close'), figure(body.replies_to_close), body.replies_to_close),
    row('response', 'close_time-mean', `${t('fig.close_time')}, ${t('fig.close_time.mean')}`,
      figure(close && close.mean_seconds, {asDuration: true}), close && close.mean_seconds, t('hint.close_time')),
    row('response', 'close_time-median', `${t('fig.close_time')}, ${t('fig.close_time.median')}`,
      figure(close && close.median_seconds, {asDuration: true}), close && close.median_seconds, t('hint.close_time'))));
}

function renderSla(body) {
  $('sla-body').replaceChildren(h('dl', {class: 'kvs'},
    ['first_response_breached', 'any_response_breached'].map((key) => row('sla', key, t(`fig.${key}`), notApplicable(), body[key])),
    row('sla', 'close_sla_breached', t('fig.close_sla_breached'), figure(body.close_sla_breached), body.close_sla_breached, t('hint.close_time'))),
  S.closeSla === null ? '' : h('p', {class: 'muted small sla-threshold', 'data-testid': 'sla-threshold'}, t('sla.threshold', {value: duration(S.closeSla)})));
}

// ---- the team table ------------------------------------------------------------------------

function teamValue(item, column) {
  if (column.key === 'name') return staffName(item.staff_id);
  return column.value ? column.value(item) : item[column.key];
}

function sortedTeam(items) {
  const column = TEAM_COLUMNS.find((c) => c.key === S.sort.key);
  const dir = S.sort.dir === 'asc' ? 1 : -1;
  const collator = new Intl.Collator(lang, {sensitivity: 'base', numeric: true});
  const byName = (a, b) => collator.compare(staffName(a.staff_id), staffName(b.staff_id)) || a.staff_id - b.staff_id;
  return [...items].sort((a, b) => {
    const x = teamValue(a, column);
    const y = teamValue(b, column);
    if (column.text) return dir * byName(a, b);
    const missing = (x === null || x === undefined) - (y === null || y === undefined);
    if (missing) return missing; // no figure sorts last either way
    return dir * (x - y) || byName(a, b);
  });
}

function renderTeamHead() {
  $('team-head').replaceChildren(...TEAM_COLUMNS.map((column) => {
    const label = column.text ? t('team.staff') : t(`team.col.${column.key}`);
    const active = S.sort.key === column.key;
    return h('th', {
      class: column.text ? 'c-name' : 'c-num', title: t(column.title),
      'aria-sort': active ? (S.sort.dir === 'asc' ? 'ascending' : 'descending') : 'none',
    }, h('button', {
      type: 'button', class: 'sort', 'data-sort': column.key, 'data-testid': `sort-${column.key}`,
      'aria-label': t('team.sort', {column: t(column.title)}),
    }, label, h('span', {class: 'sort-mark', 'aria-hidden': 'true'}, active ? (S.sort.dir === 'asc' ? '▲' : '▼') : '')));
  }));
}

function renderTeam(body) {
  renderTeamHead();
  if (!body.items.length) {
    $('team-body').replaceChildren(h('tr', {class: 'empty-row'}, h('td', {colspan: TEAM_COLUMNS.length, class: 'muted'}, t('team.empty'))));
    return;
  }
  $('team-body').replaceChildren(...sortedTeam(body.items).map((item) => {
    const known = S.names.get(item.staff_id);
    return h('tr', {'data-testid': `team-row-${item.staff_id}`, 'data-staff-id': item.staff_id},
      TEAM_COLUMNS.map((column) => {
        if (column.text) {
          return h('td', {class: 'c-name', 'data-col': 'name'}, staffName(item.staff_id),
            known && known.active === false ? h('span', {class: 'tag'}, t('team.inactive')) : null);
        }
        const value = teamValue(item, column);
        return h('td', {class: 'c-num', 'data-col': column.key, 'data-value': JSON.stringify(value ?? null)},
          figure(value, {asDuration: column.duration}));
      }));
  }));
}

function onSort(event) {
  const button = event.target.closest('button[data-sort]');
  if (!button || !S.data) return;
  const key = button.dataset.sort;
  if (S.sort.key === key) S.sort.dir = S.sort.dir === 'asc' ? 'desc' : 'asc';
  else S.sort = {key, dir: key === 'name' ? 'asc' : 'desc'};
  renderTeam(S.data.team);
  $('team-head').querySelector(`button[data-sort="${key}"]`).focus();
}

// ---- loading -------------------------------------------------------------------------------

function showError(err) {
  const alert = $('alert');
  if (!err) {
    alert.hidden = true;
    return;
  }
  let text;
  if (err.code === 'statistics_disabled') text = t('error.disabled');
  else if (err.code === 'network') text = t('error.network');
  else text = t('error.load', {message: err.message});
  alert.textContent = text;
  alert.hidden = false;
}

function csvPath(report) {
  const query = new URLSearchParams({from: S.period.from, to: S.period.to, lang});
  return `/api/v1/stats/${report}.csv?${query}`;
}

function showPeriod() {
  const {kind, from, to} = S.period;
  for (const button of document.querySelectorAll('#period-buttons button')) {
    button.setAttribute('aria-pressed', String(button.dataset.period === kind));
  }
  $('custom-form').hidden = kind !== 'custom';
  $('custom-from').value = from;
  $('custom-to').value = addDays(to, -1);
  $('custom-to').max = $('custom-from').max = todayIso();
  $('period-text').textContent = t('period.text', {range: rangeText(S.period), tz: S.tz});
  for (const link of document.querySelectorAll('a.csv-link')) {
    link.href = csvPath(link.dataset.report);
    link.title = t('csv.title', {report: t(`report.${link.dataset.report}`)});
  }
  const query = kind === 'custom' ? new URLSearchParams({from, to}) : new URLSearchParams({period: kind});
  history.replaceState(null, '', `${location.pathname}?${query}`);
}

async function load() {
  const seq = ++S.seq;
  document.body.dataset.state = 'loading';
  showPeriod();
  const {from, to} = S.period;
  try {
    const bodies = await Promise.all(REPORTS.map((r) => getJson(`/api/v1/stats/${r}?${new URLSearchParams({from, to})}`)));
    if (seq !== S.seq) return; // a newer period was asked for meanwhile
    S.data = Object.fromEntries(REPORTS.map((r, i) => [r, bodies[i]]));
    showError(null);
    renderAll();
    document.body.dataset.period = `${from}/${to}`;
    document.body.dataset.state = 'ready';
  } catch (err) {
    if (seq !== S.seq) return;
    showError(err);
    document.body.dataset.state = 'error';
  }
}

function renderAll() {
  const d = S.data;
  renderLoad(d.load);
  renderPeak(d.peak);
  renderChannels(d.channels);
  renderResponse(d.response);
  renderSla(d.sla);
  renderTeam(d.team);
}

async function loadNames() {
  // The directory (names for staff and admins); the admin's staff list before it exists.
  for (const path of ['/api/v1/directory/staff', '/api/v1/staff']) {
    try {
      const items = await allPages(path);
      S.names = new Map(items.map((s) => [s.id, {name: s.full_name, active: s.active}]));
      if (S.data) renderTeam(S.data.team);
      return;
    } catch (err) {
      if (!(err instanceof ApiError) || ![403, 404, 405].includes(err.status)) return;
    }
  }
}

async function allPages(path) {
  const first = await getJson(path);
  const items = [...first.items];
  const size = first.items.length;
  while (size && items.length < first.total) {
    const page = await getJson(`${path}?${new URLSearchParams({limit: size, offset: items.length})}`);
    if (!page.items.length) break;
    items.push(...page.items);
  }
  return items;
}

/** Who is signed in, in the top bar; the admin pages' link only for admins. */
async function loadMe() {
  let me;
  try {
    me = await getJson('/api/v1/me');
  } catch {
    return; // a service without `/me`: the top bar stays as it is
  }
  const name = me.full_name || me.email || t('me.admin');
  $('me-name').textContent = name;
  document.querySelector('#me .me-avatar').textContent = name.trim().charAt(0).toUpperCase();
  $('me-role').hidden = me.role !== 'admin' || !me.full_name; // the admin token says it already
  $('nav-admin').hidden = me.role !== 'admin';
  $('me').hidden = false;
}

async function loadSettings() {
  try {
    const settings = await getJson('/api/v1/settings');
    S.tz = settings.timezone;
    S.closeSla = settings.close_sla_seconds;
  } catch (err) {
    showError(err); // the browser's zone until the account's can be read
  }
}

// ---- the period picker ---------------------------------------------------------------------

function onPeriodButton(event) {
  const button = event.target.closest('button[data-period]');
  if (!button) return;
  const kind = button.dataset.period;
  if (kind === 'custom') {
    S.period = {...S.period, kind: 'custom'};
    showPeriod();
    $('custom-from').focus();
    return;
  }
  S.period = namedPeriod(kind);
  load();
}

function onCustom(event) {
  event.preventDefault();
  const from = $('custom-from').value;
  const last = $('custom-to').value;
  const error = $('custom-error');
  let problem = null;
  if (!ISO_DAY.test(from) || !ISO_DAY.test(last)) problem = 'period.missing';
  else if (last < from) problem = 'period.order';
  else if ((toDate(last) - toDate(from)) / 86400000 + 1 > MAX_DAYS) problem = 'period.too_long';
  error.textContent = problem ? t(problem) : '';
  error.hidden = !problem;
  if (problem) return;
  S.period = {kind: 'custom', from, to: addDays(last, 1)};
  load();
}

function onCsv(event) {
  if (!usingToken()) return; // the session cookie goes with a plain link
  event.preventDefault();
  const link = event.currentTarget;
  download(link.href, `${link.dataset.report}-${S.period.from}-${S.period.to}.csv`).catch(showError);
}

let resizeTimer = null;

function onResize() {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => S.data && renderPeak(S.data.peak), 150);
}

async function main() {
  document.title = t('page.title');
  window.I18N.apply(document);
  $('lang-slot').append(window.I18N.switcher());
  $('period-buttons').addEventListener('click', onPeriodButton);
  $('custom-form').addEventListener('submit', onCustom);
  $('refresh').addEventListener('click', () => load());
  $('team-head').addEventListener('click', onSort);
  $('signout').addEventListener('click', signOut);
  for (const link of document.querySelectorAll('a.csv-link')) link.addEventListener('click', onCsv);
  window.addEventListener('resize', onResize);
  await loadSettings();
  S.period = periodFromUrl();
  loadMe();
  loadNames();
  await load();
}

main();
