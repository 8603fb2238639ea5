/* What every part of the staff console uses: building elements, icons, formatting, toasts,
 * errors, and the one way to call the JSON API (session cookie or a stored staff token). */

export const t = (key, vars) => window.I18N.t(key, vars);

export const $ = (id) => document.getElementById(id);

/** An element: h('a', {href, class, text, onclick, dataset}, ...children). */
export function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'value') el.value = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid == null || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
const PHONE_PATH =
  'M22 16.92v3a2 2 0 0 1-2.18 2 19.79 19.79 0 0 1-8.63-3.07 19.5 19.5 0 0 1-6-6 ' +
  '19.79 19.79 0 0 1-3.07-8.67A2 2 0 0 1 4.11 2h3a2 2 0 0 1 2 1.72 12.84 12.84 0 0 0 ' +
  '.7 2.81 2 2 0 0 1-.45 2.11L8.09 9.91a16 16 0 0 0 6 6l1.27-1.27a2 2 0 0 1 2.11-.45 ' +
  '12.84 12.84 0 0 0 2.81.7A2 2 0 0 1 22 16.92z';

export function phoneIcon(cls, title) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'icon ' + (cls || ''));
  svg.setAttribute('aria-hidden', title ? 'false' : 'true');
  if (title) {
    const el = document.createElementNS(SVG_NS, 'title');
    el.textContent = title;
    svg.append(el);
  }
  const path = document.createElementNS(SVG_NS, 'path');
  path.setAttribute('d', PHONE_PATH);
  svg.append(path);
  return svg;
}

/** The case's phone icon: red for a missed call, green for a normal one (R15, R17). */
export function caseIcon(callIcon) {
  if (callIcon === 'missed' || callIcon === 'normal') {
    const title = t(callIcon === 'missed' ? 'icon.missed' : 'icon.normal');
    return h('span', {class: `case-icon ${callIcon}`, 'data-testid': 'case-icon', dataset: {icon: callIcon}, title},
      phoneIcon('', title));
  }
  return h('span', {class: 'case-icon none', 'data-testid': 'case-icon', dataset: {icon: 'none'}});
}

/** A Russian number as people read it: 79260000000 -> +7 926 000-00-00. */
export function fmtPhone(raw) {
  if (!raw) return '—';
  const d = String(raw).replace(/\D/g, '');
  if (d.length === 11 && (d[0] === '7' || d[0] === '8')) {
    return `+7 ${d.slice(1, 4)} ${d.slice(4, 7)}-${d.slice(7, 9)}-${d.slice(9)}`;
  }
  return String(raw);
}

/** ISO time with the account's offset, shown in that zone: 2026-11-01 12:34. */
export function fmtTime(iso) {
  if (!iso) return '—';
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(iso);
  return m ? `${m[1]} ${m[2]}` : iso;
}

export function fmtDuration(seconds) {
  if (seconds == null) return '—';
  const s = Math.max(0, Math.round(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** "{n} missed calls" with the plural form of the page's language. */
export function plural(base, n) {
  const form = new Intl.PluralRules(window.I18N.lang === 'ru' ? 'ru-RU' : 'en-GB').select(n);
  const key = `${base}.${form}`;
  const text = t(key, {n});
  return text === key ? t(`${base}.other`, {n}) : text;
}

export const STATUSES = ['open', 'waiting', 'closed'];
export const statusLabel = (status) => (STATUSES.includes(status) ? t(`status.${status}`) : status);

export function statusBadge(status) {
  return h('span', {class: `badge status-${status}`, 'data-testid': 'status-badge'}, statusLabel(status));
}

export function userName(user) {
  if (!user) return t('user.unknown');
  return user.full_name || user.email || user.company || fmtPhone((user.phones || [])[0]);
}

export function toast(message, kind) {
  const el = h('div', {class: `toast ${kind || 'info'}`, role: 'status', 'data-testid': 'toast'}, message);
  $('toasts').append(el);
  setTimeout(() => el.classList.add('fade'), 4500);
  setTimeout(() => el.remove(), 5000);
}

/** What an error says to staff: the service's words in English; in Russian the catalogue's
 * words for the codes it knows (the API speaks English), else the service's. */
export function errorText(err) {
  if (!err) return '';
  if (err.code && window.I18N.lang !== 'en') {
    const key = `err.${err.code}`;
    const text = t(key);
    if (text !== key) return text;
  }
  return err.message || String(err);
}

export function errorBox(err, testid) {
  return h('div', {class: 'alert alert-error', role: 'alert', 'data-testid': testid || 'error'},
    h('strong', null, err.title || t('error.title')), ' ', errorText(err),
    err.code ? h('span', {class: 'code'}, ` (${err.code})`) : null);
}

export function loadJson(storage, key, fallback) {
  try {
    return JSON.parse(storage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}

// ---- the API -------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** How requests authenticate: `token()` (a staff token, or null for the session cookie) and
 * what to do when the service stops accepting us (`unauthorized()`). */
const auth = {token: () => null, unauthorized: () => {}};

export function configureApi(options) {
  Object.assign(auth, options);
}

/** Call the JSON API: the answer's JSON, or an ApiError with the API's code and message. A
 * `token` given here is tried as is (sign-in), and a 401 then only says so. */
export async function api(method, path, body, token) {
  const bearer = token || auth.token();
  // A cookie-authenticated change must say it comes from this page (CSRF defence).
  const headers = {Accept: 'application/json', 'X-Requested-With': 'callrouter'};
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = {method, headers, credentials: 'same-origin'};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network_error', t('err.network_error'));
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) {
    const e = (data && data.error) || {};
    if (resp.status === 401 && !token) auth.unauthorized();
    throw new ApiError(resp.status, e.code || `http_${resp.status}`,
      e.message || t('error.http', {status: resp.status}));
  }
  return data;
}
