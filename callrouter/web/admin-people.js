/* admin-people.js — staff (add, deactivate, password, token, role) and the UIS operators mapped
 * to them (R2), chosen by name so that a mapping never silently names the wrong person. */

import {$, all, api, el, flash, pager, showError} from './admin-api.js';
import {initImport} from './admin-import.js';

const t = (key, vars) => window.I18N.t(key, vars);
const PAGE = 20;
const MAX_ID = 9223372036854775807n;
let everyone = [];  // every staff member, for the operator selects
let staffOffset = 0;
let operatorOffset = 0;

export async function initPeople() {
  $('#staff-form').addEventListener('submit', (event) => { event.preventDefault(); addStaff(); });
  $('#operator-form').addEventListener('submit', (event) => { event.preventDefault(); addOperator(); });
  $('#new-token-close').addEventListener('click', () => { $('#new-token').hidden = true; });
  initImport({staff: () => everyone, label: staffLabel, applied: () => loadOperators(0)});
  await loadEveryone();
  await Promise.all([loadStaff(), loadOperators()]);
}

async function loadEveryone() {
  everyone = await all('/api/v1/staff');
  everyone.sort((a, b) => a.full_name.localeCompare(b.full_name, window.I18N.lang));
  const select = $('#op-staff');
  const chosen = select.value;
  select.replaceChildren(el('option', {value: '', text: t('operators.choose')}), ...staffOptions());
  select.value = chosen;
}

function staffLabel(member) {
  const off = member.active === false ? ` — ${t('staff.inactive')}` : '';
  return `${member.full_name} · ${member.email}${off}`;
}

function staffOptions() {
  return everyone.map((member) => el('option', {value: String(member.id), text: staffLabel(member)}));
}

// ---- operators ----

async function loadOperators(offset = operatorOffset) {
  operatorOffset = offset;
  const answer = await api('GET', `/api/v1/operators?limit=${PAGE}&offset=${offset}`);
  const rows = answer.items.map(operatorRow);
  $('#operator-rows').replaceChildren(...rows);
  $('#operators-empty').hidden = answer.total > 0;
  pager($('#operators-pager'), {offset, limit: PAGE, total: answer.total}, loadOperators);
}

function operatorRow(operator) {
  const status = el('span', {class: 'form-status'});
  const select = el('select', {'aria-label': t('operators.staff_for', {id: operator.employee_id})},
    el('option', {value: '', text: t('operators.unmapped')}), ...staffOptions());
  select.value = operator.staff_id === null ? '' : String(operator.staff_id);
  if (operator.staff_id !== null && select.value === '') {
    select.append(el('option', {value: String(operator.staff_id), text: t('staff.unknown', {id: operator.staff_id})}));
    select.value = String(operator.staff_id);
  }
  select.addEventListener('change', async () => {
    const staffId = select.value ? Number(select.value) : null;
    try {
      await api('PUT', `/api/v1/operators/${operator.employee_id}`, {staff_id: staffId});
      operator.staff_id = staffId;
      flash(status, t('saved'));
    } catch (err) {
      select.value = operator.staff_id === null ? '' : String(operator.staff_id);
      flash(status, err.message, 'error', true);
    }
  });
  return el('tr', {'data-employee-id': String(operator.employee_id)},
    el('td', {class: 'col-num mono', text: String(operator.employee_id)}),
    el('td', {}, select),
    el('td', {class: 'col-status'}, status));
}

async function addOperator() {
  const error = $('#op-error');
  showError(error, '');
  const raw = $('#op-employee').value.trim();
  const staffId = $('#op-staff').value;
  if (!/^\d{1,19}$/.test(raw) || BigInt(raw) < 1n || BigInt(raw) > MAX_ID) {
    showError(error, t('operators.error.employee'));
    return;
  }
  if (!staffId) {
    showError(error, t('operators.error.staff'));
    return;
  }
  try {
    await api('PUT', `/api/v1/operators/${raw}`, {staff_id: Number(staffId)});
  } catch (err) {
    showError(error, err.message);
    return;
  }
  $('#op-employee').value = '';
  $('#op-staff').value = '';
  await loadOperators(operatorOffset);
}

// ---- staff ----

async function loadStaff(offset = staffOffset) {
  staffOffset = offset;
  const answer = await api('GET', `/api/v1/staff?limit=${PAGE}&offset=${offset}`);
  $('#staff-rows').replaceChildren(...answer.items.map(staffRow));
  $('#staff-empty').hidden = answer.total > 0;
  pager($('#staff-pager'), {offset, limit: PAGE, total: answer.total}, loadStaff);
}

function staffRow(member) {
  const active = member.active !== false;
  const role = member.role || 'staff';
  const roleSelect = el('select', {class: 'role-select', 'aria-label': t('staff.role_of', {name: member.full_name})},
    el('option', {value: 'staff', text: t('role.staff')}),
    el('option', {value: 'admin', text: t('role.admin')}));
  roleSelect.value = role;
  roleSelect.addEventListener('change', async () => {
    if (!(await change(member, {role: roleSelect.value}))) roleSelect.value = role;
  });
  const row = el('tr', {'data-staff-id': String(member.id), class: active ? '' : 'inactive'},
    el('td', {class: 'name', text: member.full_name}),
    el('td', {class: 'mono small', text: member.email}),
    el('td', {}, roleSelect),
    el('td', {class: 'nowrap'},
      el('span', {class: `badge ${active ? 'badge-on' : 'badge-off'}`, text: t(active ? 'staff.active' : 'staff.inactive')}),
      'has_password' in member ? el('div', {class: 'small muted', text: t(member.has_password ? 'staff.has_password' : 'staff.no_password')}) : null),
    el('td', {class: 'col-action'},
      el('div', {class: 'row-tools'},
        el('button', {class: 'btn btn-small', type: 'button', text: t('staff.password'),
          onclick: () => openEditor(row, passwordEditor(member))}),
        el('button', {class: 'btn btn-small', type: 'button', text: t('staff.token'),
          onclick: () => openEditor(row, tokenEditor(member))}),
        el('button', {class: `btn btn-small ${active ? 'btn-danger' : ''}`, type: 'button',
          text: t(active ? 'staff.deactivate' : 'staff.reactivate'),
          onclick: () => (active ? openEditor(row, deactivateEditor(member)) : change(member, {active: true}))}),
      )));
  return row;
}

/** A row under `row` for one action's confirmation or input (one open at a time). */
function openEditor(row, content) {
  for (const open of document.querySelectorAll('#staff-rows .row-editor')) open.remove();
  const cancel = el('button', {class: 'btn btn-link', type: 'button', text: t('cancel')});
  const editor = el('tr', {class: 'row-editor'}, el('td', {colspan: '5'}, el('div', {class: 'editor'}, content, cancel)));
  cancel.addEventListener('click', () => editor.remove());
  row.after(editor);
  const input = editor.querySelector('input');
  if (input) input.focus();
}

function passwordEditor(member) {
  const input = el('input', {type: 'password', autocomplete: 'new-password', 'aria-label': t('staff.password.new'),
    placeholder: t('staff.password.new')});
  const error = el('p', {class: 'field-error', hidden: true, role: 'alert'});
  const form = el('form', {class: 'editor-form', novalidate: true},
    el('span', {text: t('staff.password.for', {name: member.full_name})}),
    input,
    el('button', {class: 'btn btn-primary btn-small', type: 'submit', text: t('save')}),
    error);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (input.value.length < 8) { showError(error, t('staff.password.short')); return; }
    if (await change(member, {password: input.value}, error)) notice(t('staff.password.done', {name: member.full_name}));
  });
  return form;
}

function tokenEditor(member) {
  const go = el('button', {class: 'btn btn-primary btn-small', type: 'button', text: t('staff.token.go')});
  go.addEventListener('click', async () => {
    try {
      const answer = await api('POST', `/api/v1/staff/${member.id}/token`, {});
      closeEditors();
      showToken(member.full_name, answer.token);
    } catch (err) {
      closeEditors();
      notice(err.missing ? t('not_yet') : err.message, true);
    }
  });
  return el('div', {class: 'editor-form'}, el('span', {text: t('staff.token.confirm', {name: member.full_name})}), go);
}

function deactivateEditor(member) {
  const go = el('button', {class: 'btn btn-danger btn-small', type: 'button', text: t('staff.deactivate')});
  go.addEventListener('click', () => change(member, {active: false}));
  return el('div', {class: 'editor-form'}, el('span', {text: t('staff.deactivate.confirm', {name: member.full_name})}), go);
}

function closeEditors() {
  for (const open of document.querySelectorAll('#staff-rows .row-editor')) open.remove();
}

/** PATCH the member; true when done (the table is then reloaded). Errors go to `errorNode` or
 * the section's notice. */
async function change(member, body, errorNode) {
  try {
    await api('PATCH', `/api/v1/staff/${member.id}`, body);
  } catch (err) {
    const text = err.missing ? t('not_yet') : err.message;
    if (errorNode && !err.missing) showError(errorNode, text);
    else { closeEditors(); notice(text, true); }
    return false;
  }
  closeEditors();
  await Promise.all([loadStaff(staffOffset), loadEveryone().then(() => loadOperators(operatorOffset))]);
  if ('active' in body) notice(t(body.active ? 'staff.reactivated' : 'staff.deactivated', {name: member.full_name}));
  return true;
}

function notice(text, isError = false) {
  const node = $('#staff-notice');
  node.className = `alert ${isError ? 'alert-error' : 'alert-info'}`;
  node.textContent = text;
  node.hidden = false;
  clearTimeout(node._hide);
  node._hide = setTimeout(() => { node.hidden = true; }, 8000);
}

function showToken(name, token) {
  $('#new-token-text').textContent = t('staff.token.shown', {name});
  $('#new-token-value').value = token;
  $('#new-token').hidden = false;
}

async function addStaff() {
  const error = $('#staff-error');
  showError(error, '');
  const full_name = $('#staff-name').value.trim();
  const email = $('#staff-email').value.trim();
  if (!full_name) { showError(error, t('staff.error.name')); return; }
  if (!/^[^@\s]+@[^@\s]+$/.test(email)) { showError(error, t('staff.error.email')); return; }
  let made;
  try {
    made = await api('POST', '/api/v1/staff', {full_name, email});
  } catch (err) {
    showError(error, err.status === 409 ? t('staff.error.taken', {email}) : err.message);
    return;
  }
  $('#staff-name').value = '';
  $('#staff-email').value = '';
  showToken(made.full_name, made.token);
  await Promise.all([loadStaff(0), loadEveryone().then(() => loadOperators(operatorOffset))]);
}
