/* admin-inspect.js — what the admin looks into: refused webhook bodies (R33), the quarantine
 * (with "retry"), and the read-only wallboard links (create, list, revoke). */

import {$, api, el, flash, pager, when} from './admin-api.js';
import {account} from './admin-settings.js';

const t = (key, vars) => window.I18N.t(key, vars);
const PAGE = 10;
let rejectedOffset = 0;
let quarantineOffset = 0;
let linksMissing = false;  // the wallboard links are not on this server yet

export async function initInspect() {
  $('#rejected-reload').addEventListener('click', () => loadRejected(0));
  $('#quarantine-reload').addEventListener('click', () => loadQuarantine(0));
  $('#quarantine-filter').addEventListener('change', () => loadQuarantine(0));
  $('#link-form').addEventListener('submit', (event) => { event.preventDefault(); createLink(); });
  await Promise.all([loadRejected(0), loadQuarantine(0), loadLinks()]);
}

/** A stored body, pretty when it is JSON, folded under its first characters. */
function bodyView(body, size) {
  if (body === null || body === undefined) return el('span', {class: 'muted', text: '—'});
  let shown = body;
  try { shown = JSON.stringify(JSON.parse(body), null, 2); } catch (err) { shown = body; }
  const head = body.replace(/\s+/g, ' ').slice(0, 70);
  return el('details', {class: 'body-view'},
    el('summary', {},
      el('span', {class: 'mono', text: head + (body.length > 70 ? '…' : '')}),
      size !== undefined ? el('span', {class: 'muted small nowrap', text: ` · ${t('bytes', {n: window.I18N.number(size)})}`}) : null),
    el('pre', {class: 'body-text', 'data-testid': 'body-text', text: shown}));
}

// ---- rejected ----

/** Why the body was refused, in the page's language, with the service's own words (which
 * name the field or the position) beneath. */
function reason(r) {
  const key = `rejected.code.${r.code}`;
  const text = t(key);
  if (text === key) return [el('span', {text: r.message})];
  return [el('div', {text}), el('div', {class: 'reason-detail muted', lang: 'en', text: r.message})];
}

async function loadRejected(offset = rejectedOffset) {
  rejectedOffset = offset;
  const answer = await api('GET', `/api/v1/rejected?limit=${PAGE}&offset=${offset}`);
  $('#rejected-rows').replaceChildren(...answer.items.map((r) => el('tr', {'data-rejected-id': String(r.id)},
    el('td', {class: 'nowrap small', text: when(r.received_at, account.timezone)}),
    el('td', {class: 'nowrap'}, el('span', {class: 'badge badge-off', text: String(r.status)}),
      el('div', {class: 'mono small muted', text: r.code})),
    el('td', {class: 'reason'}, ...reason(r), bodyView(r.body, r.size)))));
  $('#rejected-empty').hidden = answer.total > 0;
  pager($('#rejected-pager'), {offset, limit: PAGE, total: answer.total}, loadRejected);
}

// ---- quarantine ----

async function loadQuarantine(offset = quarantineOffset) {
  quarantineOffset = offset;
  const status = $('#quarantine-filter').value;
  const filter = status ? `&status=${status}` : '';
  const answer = await api('GET', `/api/v1/quarantine?limit=${PAGE}&offset=${offset}${filter}`);
  $('#quarantine-rows').replaceChildren(...answer.items.map(quarantineRow));
  $('#quarantine-empty').hidden = answer.total > 0;
  pager($('#quarantine-pager'), {offset, limit: PAGE, total: answer.total}, loadQuarantine);
}

function quarantineRow(q) {
  const open = q.status === 'open';
  const retry = open ? el('button', {class: 'btn btn-small', type: 'button', text: t('quarantine.retry')}) : null;
  if (retry) {
    retry.addEventListener('click', async () => {
      retry.disabled = true;
      try {
        await api('POST', `/api/v1/quarantine/${q.id}/retry`, {});
        flash($('#quarantine-status'), t('quarantine.retried.one', {id: q.id}));
        await loadQuarantine();
      } catch (err) {
        retry.disabled = false;
        flash($('#quarantine-status'), err.message, 'error', true);
      }
    });
  }
  return el('tr', {'data-quarantine-id': String(q.id)},
    el('td', {class: 'nowrap small', text: when(q.created_at, account.timezone)}),
    el('td', {class: 'mono small', text: q.call_session_id === null ? '—' : String(q.call_session_id)}),
    el('td', {},
      el('div', {class: 'small muted', text: t('quarantine.stage', {stage: q.stage})}),
      el('div', {class: 'error-text', text: q.error}),
      q.body ? bodyView(q.body) : null),
    el('td', {}, el('span', {class: `badge ${open ? 'badge-warn' : 'badge-off'}`, text: t(open ? 'quarantine.open' : 'quarantine.retried')})),
    el('td', {class: 'col-action'}, retry));
}

// ---- wallboard links ----

async function loadLinks() {
  let answer;
  try {
    answer = await api('GET', '/api/v1/wallboard/links');
  } catch (err) {
    if (!err.missing) throw err;
    linksMissing = true;
    $('#link-create').disabled = true;
    $('#link-rows').replaceChildren();
    $('#links-empty').textContent = t('not_yet');
    $('#links-empty').hidden = false;
    return;
  }
  const items = Array.isArray(answer) ? answer : answer.items;
  $('#link-rows').replaceChildren(...items.map(linkRow));
  $('#links-empty').hidden = items.length > 0;
}

/** A working link (the list holds no revoked ones): its label, when it was made, "revoke". */
function linkRow(link) {
  const revoke = el('button', {class: 'btn btn-small btn-danger', type: 'button', text: t('links.revoke')});
  revoke.addEventListener('click', async () => {
    revoke.disabled = true;
    try {
      await api('DELETE', `/api/v1/wallboard/links/${link.id}`);
      flash($('#links-status'), t('links.revoked.one', {id: link.id}));
      $('#new-link').hidden = true;
      await loadLinks();
    } catch (err) {
      revoke.disabled = false;
      flash($('#links-status'), err.missing ? t('not_yet') : err.message, 'error', true);
    }
  });
  return el('tr', {'data-link-id': String(link.id)},
    el('td', {class: 'col-num mono', text: String(link.id)}),
    el('td', {text: link.label || t('links.no_label')}),
    el('td', {class: 'small nowrap', text: when(link.created_at, account.timezone)}),
    el('td', {class: 'col-action'}, revoke));
}

async function createLink() {
  const button = $('#link-create');
  button.disabled = true;
  try {
    const made = await api('POST', '/api/v1/wallboard/links', {label: $('#link-label').value.trim()});
    $('#link-label').value = '';
    $('#new-link-url').value = made.url;
    $('#new-link').hidden = false;
    await loadLinks();
  } catch (err) {
    flash($('#links-status'), err.missing ? t('not_yet') : err.message, 'error', true);
  } finally {
    button.disabled = linksMissing;
  }
}
