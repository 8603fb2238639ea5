/* admin-integration.js — the UIS integration: the form, the key check, the webhook URL to paste
 * into UIS and the six notifications of the guide (served by the API: one copy of them). */

import {$, api, copy, el, flash, showError} from './admin-api.js';

const t = (key, vars) => window.I18N.t(key, vars);
const DEFAULT_URL = 'https://callapi.uiscom.ru/v4.0';
const LETTERS = {ru: 'абвгде', en: 'abcdef'};
let saved = null;  // the integration as the server last answered it, or null

export async function initIntegration() {
  $('#integration-form').addEventListener('submit', (event) => { event.preventDefault(); save(); });
  $('#int-check').addEventListener('click', check);
  await Promise.all([load(), loadNotifications()]);
}

async function load() {
  try {
    saved = await api('GET', '/api/v1/integrations/uis');
  } catch (err) {
    if (err.status !== 404) throw err;
    saved = null;  // not set up yet
  }
  show();
}

function show() {
  const state = $('#integration-state');
  state.textContent = t(saved ? 'integration.on' : 'integration.off');
  state.className = `badge ${saved ? 'badge-on' : 'badge-off'}`;
  $('#int-number').value = saved ? saved.virtual_phone_number : $('#int-number').value;
  $('#int-url').value = saved ? saved.call_api_url : ($('#int-url').value || DEFAULT_URL);
  $('#int-key').placeholder = t(saved ? 'integration.key.saved' : 'integration.key.placeholder');
  $('#int-key-hint').textContent = t(saved ? 'integration.key.hint.saved' : 'integration.key.hint');
  $('#webhook-box').hidden = !saved;
  if (saved) $('#webhook-url').value = saved.webhook_url;
}

function values() {
  return {
    api_key: $('#int-key').value.trim(),
    virtual_phone_number: $('#int-number').value.trim(),
    call_api_url: $('#int-url').value.trim(),
  };
}

function clearErrors() {
  for (const node of document.querySelectorAll('#integration-form .field-error')) showError(node, '');
}

function fieldError(name, text) {
  showError($(`#integration-form .field-error[data-for="${name}"]`), text);
}

/** The API's 422 about one field of the form, in words, under that field. */
function showFieldProblem(err) {
  const field = (/Field '(\w+)'/.exec(err.message) || [])[1];
  const byCode = {invalid_phone: 'virtual_phone_number', invalid_url: 'call_api_url'};
  const name = byCode[err.code] || field;
  if (!name) return false;
  fieldError(name, t(`integration.error.${name}`));
  return true;
}

async function save() {
  clearErrors();
  const body = values();
  let bad = false;
  if (!body.api_key) { fieldError('api_key', t(saved ? 'integration.error.api_key.again' : 'integration.error.api_key')); bad = true; }
  if (!/\d/.test(body.virtual_phone_number)) { fieldError('virtual_phone_number', t('integration.error.virtual_phone_number')); bad = true; }
  if (!/^https?:\/\/[^/\s]+/.test(body.call_api_url)) { fieldError('call_api_url', t('integration.error.call_api_url')); bad = true; }
  if (bad) return;
  const status = $('#int-status');
  try {
    saved = await api('PUT', '/api/v1/integrations/uis', body);
  } catch (err) {
    if (err.status === 422 && showFieldProblem(err)) return;
    flash(status, err.message, 'error', true);
    return;
  }
  $('#int-key').value = '';
  show();
  flash(status, t('integration.saved'));
}

async function check() {
  clearErrors();
  const typed = values();
  const body = {};
  for (const [name, value] of Object.entries(typed)) if (value) body[name] = value;
  if (!saved && !body.api_key) { fieldError('api_key', t('integration.error.api_key')); return; }
  if (!saved && !body.virtual_phone_number) { fieldError('virtual_phone_number', t('integration.error.virtual_phone_number')); return; }
  const box = $('#check-result');
  const button = $('#int-check');
  button.disabled = true;
  box.hidden = false;
  box.className = 'alert alert-info';
  box.dataset.code = 'checking';
  box.textContent = t('check.running');
  try {
    const verdict = await api('POST', '/api/v1/integrations/uis/check', body);
    box.className = `alert ${verdict.ok ? 'alert-success' : 'alert-error'}`;
    box.dataset.code = verdict.code;
    box.replaceChildren(
      el('strong', {text: t(verdict.ok ? 'check.ok.title' : 'check.failed.title')}),
      el('span', {text: ' ' + checkMessage(verdict)}),
    );
  } catch (err) {
    box.className = 'alert alert-error';
    box.dataset.code = err.code;
    if (err.status === 422 && showFieldProblem(err)) { box.hidden = true; return; }
    box.textContent = err.message;
  } finally {
    button.disabled = false;
  }
}

/** The verdict in the page's language; UIS's own words for a refusal the page does not know. */
function checkMessage(verdict) {
  const key = `check.${verdict.code}`;
  const text = t(key, {
    ip: verdict.ip || '',
    calls: verdict.active_calls ?? 0,
    url: verdict.call_api_url,
    number: verdict.virtual_phone_number,
  });
  if (text === key) return verdict.message;
  if (verdict.code === 'ip_not_whitelisted' && verdict.ip) return t('check.ip_not_whitelisted.seen', {ip: verdict.ip});
  return text;
}

async function loadNotifications() {
  const list = $('#notifications');
  const answer = await api('GET', '/api/v1/integrations/uis/notifications');
  const letters = LETTERS[window.I18N.lang] || LETTERS.ru;
  list.replaceChildren(...answer.items.map((item, i) => {
    const name = el('code', {class: 'notification-name', text: item.name, 'data-testid': 'notification-name'});
    const body = el('pre', {class: 'notification-body', text: item.body, 'data-testid': 'notification-body'});
    return el('li', {class: 'notification', 'data-kind': item.kind},
      el('div', {class: 'notification-head'},
        el('span', {class: 'letter', text: `${letters[i] || i + 1})`}),
        name,
        el('span', {class: 'spacer'}),
        el('button', {class: 'btn btn-small', type: 'button', text: t('copy.name'),
          onclick: (e) => copy(name, e.currentTarget)}),
        el('button', {class: 'btn btn-small', type: 'button', text: t('copy.body'),
          onclick: (e) => copy(body, e.currentTarget)}),
      ),
      el('details', {class: 'notification-details', ontoggle: (e) => {
        e.currentTarget.querySelector('summary').textContent =
          t(e.currentTarget.open ? 'notifications.hide' : 'notifications.show');
      }},
        el('summary', {text: t('notifications.show')}),
        body,
      ),
    );
  }));
}
