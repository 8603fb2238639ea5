/* admin-routing.js — smart routing (issue 11): on/off, each rule, the scenario branch to fall
 * back to, the URL to put into UIS's interactive step, each operator's phones, and today's
 * figures (callers routed, and how many reached their own agent). Strings: admin-strings.js. */

import {$, all, api, el, flash, showError} from './admin-api.js';

const t = (key, vars) => window.I18N.t(key, vars);

let names = new Map();  // staff id → name

export async function initRouting() {
  $('#routing-form').addEventListener('submit', (event) => { event.preventDefault(); save(); });
  const [settings, staff] = await Promise.all([api('GET', '/api/v1/routing'), all('/api/v1/staff')]);
  names = new Map(staff.map((s) => [s.id, s.full_name]));
  show(settings);
  await Promise.all([loadPhones(), loadToday()]);
}

function show(settings) {
  const badge = $('#routing-state');
  badge.textContent = t(settings.enabled ? 'routing.on' : 'routing.off');
  badge.className = `badge ${settings.enabled ? 'badge-on' : 'badge-off'}`;
  $('#routing-enabled').checked = settings.enabled;
  $('#routing-open-case').checked = settings.open_case;
  $('#routing-last-talked').checked = settings.last_talked;
  $('#routing-fallback').value = String(settings.fallback_code);
  $('#routing-url').value = settings.route_url || '';
  $('#routing-url-row').hidden = !settings.route_url;
  $('#routing-url-none').hidden = Boolean(settings.route_url);
  const view = settings.view;
  $('#routing-view').textContent = view.loaded
    ? t('routing.view', {callers: window.I18N.number(view.callers), age: view.states_age_seconds === null ? '—' : view.states_age_seconds.toFixed(1)})
    : t('routing.view.loading');
}

async function save() {
  const status = $('#routing-status');
  const error = $('#routing-form .field-error[data-for="fallback_code"]');
  showError(error, '');
  const raw = $('#routing-fallback').value.trim();
  if (!/^\d{1,4}$/.test(raw) || Number(raw) > 1000) { showError(error, t('routing.fallback.error')); return; }
  const body = {
    enabled: $('#routing-enabled').checked,
    open_case: $('#routing-open-case').checked,
    last_talked: $('#routing-last-talked').checked,
    fallback_code: Number(raw),
  };
  try {
    show(await api('PUT', '/api/v1/routing', body));
  } catch (err) {
    flash(status, err.message, 'error', true);
    return;
  }
  flash(status, t('routing.saved'));
}

async function loadToday() {
  try {
    const today = await api('GET', '/api/v1/routing/stats');
    $('#routing-today').textContent = t('routing.today', {routed: today.routed, reached: today.reached});
  } catch (err) {
    $('#routing-today').textContent = '';
  }
}

// ---- operator phones ----

async function loadPhones() {
  const operators = (await all('/api/v1/operators')).filter((o) => o.staff_id !== null);
  $('#routing-phone-rows').replaceChildren(...operators.map(phoneRow));
  $('#routing-phones-empty').hidden = operators.length > 0;
}

function phoneRow(operator) {
  const status = el('span', {class: 'form-status'});
  const input = el('input', {type: 'text', inputmode: 'tel', class: 'phones-input',
    'aria-label': t('routing.phones.for', {id: operator.employee_id}),
    'data-employee': String(operator.employee_id)});
  input.value = operator.phones.join(', ');
  const button = el('button', {class: 'btn btn-small', type: 'button', text: t('routing.phones.save')});
  button.addEventListener('click', async () => {
    const phones = input.value.split(/[,;\n]/).map((p) => p.trim()).filter(Boolean);
    if (phones.some((p) => !/\d/.test(p))) { flash(status, t('routing.phones.error'), 'error', true); return; }
    button.disabled = true;
    try {
      const answer = await api('PUT', `/api/v1/operators/${operator.employee_id}`, {staff_id: operator.staff_id, phones});
      input.value = answer.phones.join(', ');
      flash(status, t('routing.saved'));
    } catch (err) {
      flash(status, err.message, 'error', true);
    } finally {
      button.disabled = false;
    }
  });
  const name = names.get(operator.staff_id) || t('routing.staff.unknown', {id: operator.staff_id});
  return el('tr', {'data-employee': String(operator.employee_id)},
    el('td', {class: 'col-num mono', text: String(operator.employee_id)}),
    el('td', {text: operator.full_name ? `${name} (${operator.full_name})` : name}),
    el('td', {}, input),
    el('td', {class: 'col-status'}, button, status));
}
