/* stats-routing.js — smart routing's figures for the period the statistics page shows
 * (issue 11): calls routed to a staff member, how many reached their own agent, per staff
 * member. Follows the page's period (`body[data-period]`, set after each load succeeded); strings in both
 * languages are registered here. */

import {getJson} from './stats-api.js';

const t = (key, vars) => window.I18N.t(key, vars);

window.I18N.register({
  ru: {
    'routing.title': 'Умная маршрутизация',
    'routing.routed': 'Направлено к своему сотруднику',
    'routing.reached': 'Дозвонились до своего сотрудника',
    'routing.share': 'Доля дозвонившихся',
    'routing.staff': 'Сотрудник',
    'routing.none': 'За период маршрутизация никого не направила.',
    'routing.foot': 'Звонки считаются по времени, когда UIS спросил, куда их направить; «дозвонились» — сотрудник, к которому направили звонок, с клиентом поговорил.',
  },
  en: {
    'routing.title': 'Smart routing',
    'routing.routed': 'Routed to their own agent',
    'routing.reached': 'Reached their own agent',
    'routing.share': 'Share reached',
    'routing.staff': 'Staff member',
    'routing.none': 'No caller was routed to a staff member in these dates.',
    'routing.foot': 'Calls count by when UIS asked where to send them; "reached" means the staff member the call was routed to talked with the caller.',
  },
});

const $ = (id) => document.getElementById(id);
let names = null;  // staff id → name, read once the page has shown its first period

function cell(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function figure(key, value, share = false) {
  const box = cell('div', '', {class: 'figure', 'data-testid': `fig-routing-${key}`, 'data-value': String(value)});
  box.append(cell('span', share ? `${Math.round(value * 100)} %` : String(value), {class: 'figure-value'}));
  box.append(cell('span', t(`routing.${key}`), {class: 'figure-label'}));
  return box;
}

async function loadNames() {
  try {
    const staff = await getJson('/api/v1/directory/staff?limit=500');
    names = new Map(staff.items.map((s) => [s.id, s.full_name]));
  } catch (err) {
    names = new Map();
  }
}

async function show(period) {
  const [from, to] = period.split('/');
  if (names === null) await loadNames();
  let body;
  try {
    body = await getJson(`/api/v1/routing/stats?${new URLSearchParams({from, to})}`);
  } catch (err) {
    $('report-routing').hidden = true;  // an older server, or no right to read it
    return;
  }
  $('report-routing').hidden = false;
  const figures = [figure('routed', body.routed), figure('reached', body.reached)];
  if (body.routed) figures.push(figure('share', body.reached / body.routed, true));
  $('routing-figures').replaceChildren(...figures);
  const rows = body.per_staff.map((r) => {
    const tr = cell('tr', '', {'data-staff': String(r.staff_id)});
    tr.append(cell('td', names.get(r.staff_id) || `#${r.staff_id}`), cell('td', String(r.routed), {class: 'c-num'}),
      cell('td', String(r.reached), {class: 'c-num'}));
    return tr;
  });
  $('routing-rows').replaceChildren(...rows);
  $('routing-none').hidden = rows.length > 0;
}

function main() {
  window.I18N.apply($('report-routing'));
  // Nothing is asked before the page's own first load has succeeded (its sign-in rules hold).
  const follow = () => { if (document.body.dataset.period) show(document.body.dataset.period); };
  new MutationObserver(follow).observe(document.body, {attributes: true, attributeFilter: ['data-period']});
  follow();
}

main();
