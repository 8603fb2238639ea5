/* admin-reconcile.js — reconciliation with the UIS Data API (issue 11 part 2): the periodic
 * run's settings, a run now for a period, and the runs — status, repairs per kind, errors in
 * words, each run's repairs. Strings: admin-strings.js. */

import {$, api, el, flash, pager, showError, when} from './admin-api.js';

const t = (key, vars) => window.I18N.t(key, vars);
const KINDS = ['outgoing_call', 'leg_start', 'answer', 'leg_end', 'call_end', 'recording'];
const PAGE = 10;
// Each field in the unit the admin thinks in, and the API's range in seconds.
const FIELDS = {
  interval_seconds: {input: '#reconcile-interval', unit: 60, low: 1, high: 1440},
  lookback_seconds: {input: '#reconcile-lookback', unit: 3600, low: 1, high: 168},
  margin_seconds: {input: '#reconcile-margin', unit: 1, low: 30, high: 3600},
};

let offset = 0;
let timer = null;
let zone;  // the account's time zone: times and the default period are shown in it

export async function initReconcile() {
  $('#reconcile-form').addEventListener('submit', (event) => { event.preventDefault(); save(); });
  $('#reconcile-run-form').addEventListener('submit', (event) => { event.preventDefault(); runNow(); });
  const [settings, account] = await Promise.all([
    api('GET', '/api/v1/reconcile/settings'), api('GET', '/api/v1/settings')]);
  zone = account.timezone;
  const now = Date.now();
  $('#reconcile-from').value = dateIn(now - 86400000);  // yesterday and today by default
  $('#reconcile-to').value = dateIn(now + 86400000);
  show(settings);
  await loadRuns();
}

/** YYYY-MM-DD of a moment in the account's zone. */
function dateIn(ms) {
  try {
    return new Intl.DateTimeFormat('en-CA', {timeZone: zone}).format(new Date(ms));
  } catch (err) {
    return new Date(ms).toISOString().slice(0, 10);
  }
}

function show(settings) {
  const badge = $('#reconcile-state');
  badge.textContent = t(settings.enabled ? 'reconcile.on' : 'reconcile.off');
  badge.className = `badge ${settings.enabled ? 'badge-on' : 'badge-off'}`;
  $('#reconcile-enabled').checked = settings.enabled;
  for (const [name, field] of Object.entries(FIELDS)) $(field.input).value = String(settings[name] / field.unit);
  $('#reconcile-hold').textContent = settings.hold_seconds
    ? t('reconcile.hold', {minutes: window.I18N.number(Math.round(settings.hold_seconds / 60))})
    : t('reconcile.hold.none');
}

async function save() {
  const body = {enabled: $('#reconcile-enabled').checked};
  let ok = true;
  for (const [name, field] of Object.entries(FIELDS)) {
    const error = $(`#reconcile-form .field-error[data-for="${name}"]`);
    const raw = $(field.input).value.trim();
    const value = Number(raw);
    const good = /^\d+$/.test(raw) && value >= field.low && value <= field.high;
    showError(error, good ? '' : t('reconcile.field.error', {low: field.low, high: field.high}));
    ok = ok && good;
    body[name] = value * field.unit;
  }
  if (!ok) return;
  try {
    show(await api('PUT', '/api/v1/reconcile/settings', body));
  } catch (err) {
    flash($('#reconcile-status'), err.message, 'error', true);
    return;
  }
  flash($('#reconcile-status'), t('reconcile.saved'));
}

async function runNow() {
  const status = $('#reconcile-run-status');
  const from = $('#reconcile-from').value;
  const to = $('#reconcile-to').value;
  if (!from || !to || from >= to) { flash(status, t('reconcile.period.error'), 'error', true); return; }
  try {
    const queued = await api('POST', '/api/v1/reconcile', {from, to});
    flash(status, t('reconcile.queued', {id: queued.id}));
  } catch (err) {
    flash(status, err.message, 'error', true);
    return;
  }
  offset = 0;
  await loadRuns();
}

async function loadRuns() {
  clearTimeout(timer);
  const page = await api('GET', `/api/v1/reconcile?limit=${PAGE}&offset=${offset}`);
  $('#reconcile-held').textContent = t('reconcile.held', {n: window.I18N.number(page.held_calls)});
  $('#reconcile-rows').replaceChildren(...page.items.map(runRows).flat());
  $('#reconcile-empty').hidden = page.total > 0;
  pager($('#reconcile-pager'), {offset, limit: PAGE, total: page.total}, (next) => { offset = next; loadRuns(); });
  // A run in progress: look again shortly (a day's period takes seconds).
  if (page.items.some((run) => run.status === 'queued' || run.status === 'running')) {
    timer = setTimeout(loadRuns, 1000);
  }
}

function runRows(run) {
  const status = el('span', {class: `badge ${{done: 'badge-on', failed: 'badge-warn'}[run.status] || 'badge-off'}`,
    text: t(`reconcile.status.${run.status}`)});
  const what = el('td', {class: 'reconcile-what'});
  if (run.status === 'failed') {
    what.append(el('p', {class: 'field-error', text: errorText(run)}));
  } else if (run.status === 'done') {
    what.append(el('span', {text: counts(run.counts)}));
  }
  const rows = [el('tr', {'data-run': String(run.id)},
    el('td', {class: 'col-num mono', text: String(run.id)}),
    el('td', {text: `${when(run.from, zone)} — ${when(run.to, zone)}`}),
    el('td', {text: t(`reconcile.trigger.${run.trigger}`)}),
    el('td', {}, status),
    el('td', {class: 'col-num', text: run.status === 'done' ? String(run.calls_seen) : ''}),
    what)];
  if (run.repairs.length) {
    const list = el('ul', {class: 'reconcile-repairs'}, ...run.repairs.map(repairLine));
    const details = el('details', {}, el('summary', {text: t('reconcile.repairs.show', {n: run.repairs.length})}), list);
    rows.push(el('tr', {class: 'reconcile-detail', 'data-run-repairs': String(run.id)},
      el('td', {}), el('td', {colspan: '5'}, details)));
  }
  return rows;
}

function counts(byKind) {
  const parts = KINDS.filter((k) => byKind[k]).map((k) => `${t(`reconcile.kind.${k}`)}: ${byKind[k]}`);
  if (byKind.whole_calls) parts.push(t('reconcile.kind.whole_calls', {n: byKind.whole_calls}));
  return parts.length ? parts.join(' · ') : t('reconcile.none');
}

function errorText(run) {
  const key = `reconcile.error.${run.error_code}`;
  const known = t(key);
  return known !== key ? known : (run.error || run.error_code || '');
}

function repairLine(repair) {
  const parts = [when(repair.at, zone), t(`reconcile.kind.${repair.kind}`), t('reconcile.repairs.call', {call: repair.call_session_id})];
  if (repair.leg_id !== null) parts.push(t('reconcile.repairs.leg', {leg: repair.leg_id}));
  if (repair.whole_call) parts.push(t('reconcile.repairs.whole'));
  if (!repair.stored) parts.push(t('reconcile.repairs.dup'));
  return el('li', {text: parts.join(' · ')});
}
