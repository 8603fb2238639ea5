/* admin-import.js — operators imported from UIS (issue 11): the account's employees (read by
 * the server from the UIS Data API) with their groups and phones, a staff member proposed for
 * each (by email, then by name) and preselected, applied all at once in one request. */

import {$, api, el, showError} from './admin-api.js';

const t = (key, vars) => window.I18N.t(key, vars);
let employees = [];
let people = {staff: () => [], label: (m) => m.full_name, applied: async () => {}};

export function initImport(deps) {
  people = deps;
  $('#import-open').addEventListener('click', load);
  $('#import-apply').addEventListener('click', apply);
  $('#import-cancel').addEventListener('click', close);
}

/** The service's error in the page's language when the catalogue knows its code. */
function message(err) {
  const key = `import.error.${err.code}`;
  const text = t(key);
  return text === key ? err.message : text;
}

async function load() {
  const button = $('#import-open');
  showError($('#import-error'), '');
  $('#import-status').textContent = t('import.loading');
  button.disabled = true;
  try {
    employees = (await api('GET', '/api/v1/operators/import')).items;
  } catch (err) {
    $('#import-status').textContent = '';
    showError($('#import-error'), message(err));
    return;
  } finally {
    button.disabled = false;
  }
  const proposed = employees.filter((e) => e.proposed_staff_id !== null).length;
  $('#import-status').textContent = t('import.found', {n: employees.length, proposed});
  $('#import-rows').replaceChildren(...employees.map(row));
  $('#import-box').hidden = false;
}

function staffName(id) {
  const member = people.staff().find((m) => m.id === id);
  return member ? member.full_name : t('staff.unknown', {id});
}

function row(employee) {
  const select = el('select', {'aria-label': t('import.staff_for', {name: employee.full_name})},
    el('option', {value: '', text: t('operators.unmapped')}),
    ...people.staff().map((m) => el('option', {value: String(m.id), text: people.label(m)})));
  // The current mapping wins over a proposal: importing never silently re-maps anyone.
  const chosen = employee.staff_id ?? employee.proposed_staff_id;
  select.value = chosen === null ? '' : String(chosen);
  const why = employee.staff_id === null && employee.proposed_by
    ? el('span', {class: 'why', text: t(`import.by.${employee.proposed_by}`)}) : null;
  const tr = el('tr', {'data-employee-id': String(employee.employee_id)},
    el('td', {class: 'col-num mono', text: String(employee.employee_id)}),
    el('td', {},
      el('div', {class: 'name', text: employee.full_name || '—'}),
      employee.email ? el('div', {class: 'mono small muted', text: employee.email}) : null),
    el('td', {class: 'small', text: employee.groups.join(', ')}),
    el('td', {class: 'mono small'}, ...employee.phones.map((p) => el('div', {text: p}))),
    el('td', {}, select, why),
    el('td', {class: 'small', text: employee.staff_id === null
      ? t(employee.mapped ? 'operators.unmapped' : 'import.new') : staffName(employee.staff_id)}));
  const mark = () => tr.classList.toggle('changed', (select.value || null) !== (employee.staff_id === null ? null : String(employee.staff_id)));
  select.addEventListener('change', mark);
  mark();
  return tr;
}

async function apply() {
  const mappings = [];
  for (const tr of $('#import-rows').children) {
    const employee = employees.find((e) => String(e.employee_id) === tr.dataset.employeeId);
    const value = tr.querySelector('select').value;
    const staffId = value ? Number(value) : null;
    // Unmapped employees not known here yet are left out: nothing to record for them.
    if (staffId === null && !employee.mapped) continue;
    mappings.push({employee_id: employee.employee_id, staff_id: staffId,
      full_name: employee.full_name || null, phones: employee.phones});
  }
  if (!mappings.length) {
    $('#import-status').textContent = t('import.nothing');
    return;
  }
  const button = $('#import-apply');
  button.disabled = true;
  try {
    const done = await api('POST', '/api/v1/operators/import', {mappings});
    close();
    $('#import-status').textContent = t('import.done', {mapped: done.mapped, unmapped: done.unmapped});
    await people.applied();
  } catch (err) {
    showError($('#import-error'), message(err));
  } finally {
    button.disabled = false;
  }
}

function close() {
  $('#import-box').hidden = true;
  $('#import-rows').replaceChildren();
  showError($('#import-error'), '');
}
