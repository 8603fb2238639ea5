/* admin-settings.js — the popup fields (R3) and the account settings, each error in words under
 * its own field. */

import {$, api, duration, el, flash, showError} from './admin-api.js';

const t = (key, vars) => window.I18N.t(key, vars);
const BUILTIN = ['full_name', 'email', 'company', 'phones', 'note'];
const SECONDS = ['close_sla_seconds', 'service_level_seconds', 'silent_call_timeout_seconds'];
export let account = {timezone: 'Europe/Moscow'};

export async function initSettings() {
  $('#field-form').addEventListener('submit', (event) => { event.preventDefault(); addField(); });
  $('#settings-form').addEventListener('submit', (event) => { event.preventDefault(); saveSettings(); });
  for (const name of SECONDS) {
    const input = $(`#settings-form [name="${name}"]`);
    input.addEventListener('input', () => hint(name));
  }
  await Promise.all([loadFields(), loadSettings()]);
}

// ---- popup fields ----

async function loadFields() {
  const fields = await api('GET', '/api/v1/fields');
  $('#field-list').replaceChildren(...fields.map(fieldItem));
}

function fieldTitle(field) {
  const key = `field.${field.key}`;
  return BUILTIN.includes(field.key) && t(key) !== key ? t(key) : field.title;
}

function fieldItem(field) {
  const status = el('span', {class: 'form-status'});
  const box = el('input', {type: 'checkbox', checked: field.incoming_call, 'data-key': field.key});
  box.addEventListener('change', async () => {
    box.disabled = true;
    try {
      const answer = await api('PATCH', `/api/v1/fields/${encodeURIComponent(field.key)}`, {incoming_call: box.checked});
      field.incoming_call = answer.incoming_call;
      flash(status, t(answer.incoming_call ? 'fields.shown' : 'fields.hidden'));
    } catch (err) {
      box.checked = field.incoming_call;
      flash(status, err.message, 'error', true);
    } finally {
      box.disabled = false;
    }
  });
  const kind = BUILTIN.includes(field.key) ? t('fields.builtin') : t('fields.custom');
  return el('li', {'data-field': field.key},
    el('label', {class: 'check'}, box, el('span', {class: 'field-title', text: fieldTitle(field)})),
    el('span', {class: 'mono muted small', text: field.key}),
    el('span', {class: 'tag', text: kind}),
    status);
}

async function addField() {
  const error = $('#field-error');
  showError(error, '');
  const title = $('#field-title').value.trim();
  const key = $('#field-key').value.trim();
  if (!title) { showError(error, t('fields.error.title')); return; }
  if (!/^[a-z][a-z0-9_]{0,63}$/.test(key)) { showError(error, t('fields.error.key')); return; }
  try {
    await api('POST', '/api/v1/fields', {key, title, incoming_call: $('#field-popup').checked});
  } catch (err) {
    showError(error, err.status === 409 ? t('fields.error.taken', {key}) : err.message);
    return;
  }
  $('#field-title').value = '';
  $('#field-key').value = '';
  $('#field-popup').checked = false;
  await loadFields();
}

// ---- settings ----

function zones(current) {
  let names = [];
  try { names = Intl.supportedValuesOf('timeZone'); } catch (err) { names = []; }
  names = [...new Set([...names, 'UTC', current])].filter(Boolean).sort();
  return names;
}

async function loadSettings() {
  account = await api('GET', '/api/v1/settings');
  show();
}

function show() {
  const select = $('#set-timezone');
  select.replaceChildren(...zones(account.timezone).map((name) => el('option', {value: name, text: name.replace(/_/g, ' ')})));
  select.value = account.timezone;
  for (const name of SECONDS) {
    $(`#settings-form [name="${name}"]`).value = String(account[name]);
    hint(name);
  }
}

function hint(name) {
  const raw = $(`#settings-form [name="${name}"]`).value.trim();
  const now = /^\d{1,12}$/.test(raw) ? ` ${t('settings.now', {value: duration(Number(raw))})}` : '';
  $(`#settings-form [data-hint-for="${name}"]`).textContent = t(`settings.${name}.hint`) + now;
}

function fieldError(name, text) {
  showError($(`#settings-form .field-error[data-for="${name}"]`), text);
}

/** The API's refusal of one setting, in words under that setting. */
function explain(err) {
  const message = err.message || '';
  if (/silent_call_timeout_seconds must be longer than lateness_seconds/.test(message)) {
    return ['silent_call_timeout_seconds', t('settings.error.lateness', {lateness: duration(account.lateness_seconds)})];
  }
  if (err.code === 'invalid_timezone') return ['timezone', t('settings.error.timezone')];
  const field = (/Field '(\w+)'/.exec(message) || [])[1];
  const range = /from (\d+) to (\d+)/.exec(message);
  if (field && range) {
    const [low, high] = [Number(range[1]), Number(range[2])];
    return [field, t('settings.error.range', {low, high, lowText: duration(low), highText: duration(high)})];
  }
  return [field || null, message];
}

async function saveSettings() {
  const status = $('#settings-status');
  for (const node of document.querySelectorAll('#settings-form .field-error')) showError(node, '');
  const body = {timezone: $('#set-timezone').value};
  let bad = false;
  for (const name of SECONDS) {
    const raw = $(`#settings-form [name="${name}"]`).value.trim();
    if (!/^\d{1,12}$/.test(raw)) {
      fieldError(name, t(raw ? 'settings.error.whole' : 'settings.error.empty'));
      bad = true;
    } else {
      body[name] = Number(raw);
    }
  }
  if (bad) { flash(status, t('settings.not_saved'), 'error', true); return; }
  try {
    account = await api('PUT', '/api/v1/settings', body);
  } catch (err) {
    const [field, text] = explain(err);
    if (field) fieldError(field, text);
    flash(status, field ? t('settings.not_saved') : text, 'error', true);
    return;
  }
  show();
  flash(status, t('settings.saved'));
}
