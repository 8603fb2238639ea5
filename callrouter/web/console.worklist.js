/* The staff console's two worklists:
 *   #/missed  open missed-call cases to call back, oldest first, each with how many missed
 *             calls it groups (R15, R16) and a one-click call-back (R18);
 *   #/log     my recent calls and the cases they are in.
 * Both follow the live events (a decided call, an updated case) and keep the missed count in
 * the top bar current. */
import {
  $, api, caseIcon, errorBox, fmtDuration, fmtPhone, fmtTime, h, phoneIcon, plural, statusBadge, t,
} from './console.util.js';

const PAGE = 50;
const REFRESH_DELAY_MS = 400; // a burst of events (a call decided: cases updated) reads once

const W = {countTimer: null, started: false};

export const owns = (v) => !!v && (v.name === 'missed' || v.name === 'log');

/** Signed in: the missed count in the top bar. */
export function start() {
  W.started = true;
  refreshCount();
}

/** Something happened to calls or cases: what shows them reads them again, soon. */
export function changed(v) {
  if (!W.started) return;
  clearTimeout(W.countTimer);
  W.countTimer = setTimeout(() => {
    refreshCount();
    if (owns(v) && v.isCurrent()) refresh(v);
  }, REFRESH_DELAY_MS);
}

async function refreshCount() {
  const badge = $('nav-missed-count');
  try {
    const data = await api('GET', '/api/v1/worklist/missed?limit=0');
    badge.textContent = String(data.total);
    badge.hidden = data.total === 0;
  } catch {
    badge.hidden = true;
  }
}

export function show(kind, q, ctx) {
  const offset = Math.max(0, Number(q.get('offset')) || 0);
  const body = h('div', {class: 'panel-body'}, h('p', {class: 'muted'}, t('loading')));
  const v = {name: kind, offset, body, ctx, mine: q.get('mine') === '1'};
  v.isCurrent = () => ctx.isView(v);
  const refreshButton = h('button', {class: 'btn', type: 'button', onclick: () => refresh(v)}, t('refresh'));
  if (kind === 'missed') {
    const mine = h('select', {id: 'missed-filter', 'data-testid': 'missed-filter', 'aria-label': t('missed.whose'),
      onchange: () => { location.hash = mine.value === '1' ? '#/missed?mine=1' : '#/missed'; }},
    h('option', {value: ''}, t('missed.all')), h('option', {value: '1'}, t('missed.mine')));
    mine.value = v.mine ? '1' : '';
    const me = ctx.me();
    mine.hidden = !!me && me.staff_id == null;
    ctx.mount(h('section', {class: 'view', id: 'missed-view', 'data-testid': 'missed-view'},
      h('div', {class: 'view-head'},
        h('h1', null, t('missed.title')),
        h('div', {class: 'view-tools'}, mine, refreshButton)),
      h('p', {class: 'muted lead'}, t('missed.lead')),
      h('div', {class: 'panel'}, body)));
  } else {
    ctx.mount(h('section', {class: 'view', id: 'log-view', 'data-testid': 'log-view'},
      h('div', {class: 'view-head'},
        h('h1', null, t('log.title')),
        h('div', {class: 'view-tools'}, refreshButton)),
      h('div', {class: 'panel'}, body)));
  }
  refresh(v);
  return v;
}

export async function refresh(v) {
  if (v.busy) { v.again = true; return; }
  v.busy = true;
  try {
    if (v.name === 'missed') await refreshMissed(v);
    else await refreshLog(v);
  } catch (err) {
    if (v.isCurrent()) v.body.replaceChildren(errorBox(err));
  } finally {
    v.busy = false;
    if (v.again && v.isCurrent()) { v.again = false; refresh(v); }
  }
}

// ---- missed calls -----------------------------------------------------------------------

async function refreshMissed(v) {
  const params = new URLSearchParams({limit: String(PAGE), offset: String(v.offset)});
  if (v.mine) params.set('mine', 'true');
  const data = await api('GET', `/api/v1/worklist/missed?${params}`);
  if (!v.isCurrent()) return;
  if (!v.mine && v.offset === 0) {
    const badge = $('nav-missed-count');
    badge.textContent = String(data.total);
    badge.hidden = data.total === 0;
  }
  if (!data.items.length) {
    v.body.replaceChildren(h('p', {class: 'empty', 'data-testid': 'missed-empty'}, t(v.mine ? 'missed.noneMine' : 'missed.none')));
    return;
  }
  v.body.replaceChildren(h('table', {class: 'table worklist', 'data-testid': 'missed-table'},
    h('thead', null, h('tr', null,
      h('th', {class: 'col-icon'}), h('th', null, t('missed.caller')), h('th', null, t('missed.calls')),
      h('th', null, t('missed.since')), h('th', null, t('case.assignee')), h('th', {class: 'col-action'}))),
    h('tbody', null, data.items.map((item) => missedRow(v, item)))),
  pager(v, data.total, '#/missed', v.mine ? 'mine=1&' : ''));
}

function missedRow(v, item) {
  const caller = item.user_name || (item.phone ? fmtPhone(item.phone) : t('popup.unknownCaller'));
  const busy = v.ctx.dialBusy();
  return h('tr', {'data-testid': 'missed-row', dataset: {caseId: item.case_id}},
    h('td', {class: 'col-icon'}, caseIcon('missed')),
    h('td', null,
      item.user_id != null
        ? h('a', {href: `#/user/${item.user_id}`, class: 'case-link', 'data-testid': 'missed-caller'}, caller)
        : h('span', {class: 'case-link', 'data-testid': 'missed-caller'}, caller),
      h('div', {class: 'muted small'},
        item.user_name && item.phone ? `${fmtPhone(item.phone)} · ` : '',
        h('a', {href: `#/case/${item.case_id}`, 'data-testid': 'missed-case'}, t('missed.case', {id: item.case_id})))),
    h('td', null,
      h('span', {class: 'count-badge', 'data-testid': 'missed-count', dataset: {count: item.missed_calls},
        title: plural('missed.count', item.missed_calls)}, `×${item.missed_calls}`),
      ' ', h('span', {class: 'small'}, plural('missed.count', item.missed_calls)),
      item.attempts ? h('div', {class: 'muted small', 'data-testid': 'missed-attempts'},
        plural('missed.attempts', item.attempts)) : null),
    h('td', {class: 'nowrap'},
      h('span', {'data-testid': 'missed-since'}, fmtTime(item.first_missed_at || item.created_at)),
      item.missed_calls > 1 ? h('div', {class: 'muted small'}, t('missed.last', {time: fmtTime(item.last_missed_at)})) : null),
    h('td', {class: 'muted', 'data-testid': 'missed-assignee'}, v.ctx.staffName(item.assignee_id)),
    h('td', {class: 'col-action'},
      h('button', {class: 'btn btn-small btn-call', type: 'button', 'data-testid': 'call-back',
        disabled: !item.phone || busy, title: item.phone ? t('missed.callBackTitle', {phone: fmtPhone(item.phone)}) : t('missed.noPhone'),
        onclick: () => v.ctx.callBack(item.case_id, item.phone)}, phoneIcon(), t('missed.callBack'))));
}

// ---- my calls ---------------------------------------------------------------------------

const OUTCOMES = ['answered', 'missed', 'attempt', 'ignored'];

async function refreshLog(v) {
  const me = v.ctx.me();
  if (me && me.staff_id == null) {
    v.body.replaceChildren(h('p', {class: 'empty', 'data-testid': 'log-admin'}, t('log.adminOnly')));
    return;
  }
  const data = await api('GET', `/api/v1/worklist/calls?limit=${PAGE}&offset=${v.offset}`);
  if (!v.isCurrent()) return;
  if (!data.items.length) {
    v.body.replaceChildren(h('p', {class: 'empty', 'data-testid': 'log-empty'}, t('log.none')));
    return;
  }
  v.body.replaceChildren(h('table', {class: 'table', 'data-testid': 'log-table'},
    h('thead', null, h('tr', null,
      h('th', null, t('log.when')), h('th', null, t('log.call')), h('th', null, t('missed.caller')),
      h('th', null, t('log.outcome')), h('th', null, t('log.talk')), h('th', null, t('log.cases')))),
    h('tbody', null, data.items.map((call) => logRow(call)))),
  pager(v, data.total, '#/log', ''));
}

function logRow(call) {
  const caller = call.user_name || fmtPhone(call.phone);
  const outcome = OUTCOMES.includes(call.outcome) ? t(`log.outcome.${call.outcome}`) : call.outcome || '—';
  return h('tr', {'data-testid': 'log-row', dataset: {callId: call.call_session_id, outcome: call.outcome || ''}},
    h('td', {class: 'nowrap muted'}, fmtTime(call.started_at || call.ended_at)),
    h('td', {class: 'nowrap'},
      h('span', {class: `call-badge ${call.outcome === 'answered' ? '' : 'missed'}`}, phoneIcon()), ' ',
      h('span', {'data-testid': 'log-direction'}, t(call.direction === 'out' ? 'call.outgoing' : 'call.incoming'))),
    h('td', null,
      call.user_id != null ? h('a', {href: `#/user/${call.user_id}`, 'data-testid': 'log-caller'}, caller)
        : h('span', {'data-testid': 'log-caller'}, caller),
      call.user_name ? h('div', {class: 'muted small'}, fmtPhone(call.phone)) : null),
    h('td', null, h('span', {class: `outcome-tag outcome-${call.outcome}`, 'data-testid': 'log-outcome'}, outcome),
      // Smart routing (issue 11) sent this caller to a staff member's phones.
      (call.routing || []).some((d) => d.phones.length)
        ? h('div', {class: 'muted small', 'data-testid': 'log-routed'}, t('log.routed')) : null),
    h('td', {class: 'nowrap muted'}, call.outcome === 'answered' ? fmtDuration(call.talk_seconds) : '—'),
    h('td', {'data-testid': 'log-cases'}, call.cases.length
      ? call.cases.map((c) => h('div', {class: 'log-case'},
        caseIcon(c.call_icon),
        h('a', {href: `#/case/${c.id}`, 'data-testid': 'log-case', dataset: {caseId: c.id}}, `#${c.id} ${c.subject}`),
        ' ', statusBadge(c.status)))
      : h('span', {class: 'muted'}, t('log.noCase'))));
}

function pager(v, total, base, extra) {
  if (total <= PAGE) return h('p', {class: 'muted small total', 'data-testid': 'worklist-total'}, t('worklist.total', {n: total}));
  const link = (offset) => `${base}?${extra}offset=${offset}`;
  const backKey = v.name === 'missed' ? 'pager.previous' : 'pager.newer';
  const nextKey = v.name === 'missed' ? 'pager.next' : 'pager.older';
  return h('div', {class: 'pager'},
    h('span', {class: 'muted small'}, t('pager.range', {from: v.offset + 1, to: Math.min(total, v.offset + PAGE), total})),
    v.offset > 0 ? h('a', {class: 'btn btn-small', href: link(Math.max(0, v.offset - PAGE))}, t(backKey)) : null,
    v.offset + PAGE < total ? h('a', {class: 'btn btn-small', href: link(v.offset + PAGE)}, t(nextKey)) : null);
}
