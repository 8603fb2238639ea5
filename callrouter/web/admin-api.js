/* admin-api.js — the admin page's calls to the JSON API, and its small DOM helpers.
 *
 * The page signs in with the session cookie (role admin). Until the sign-in page is in use, the
 * admin token kept in this browser (localStorage `callrouter.admin_token`) also works. A 401 or
 * 403 on a page load sends the admin to /login?next=/admin.
 */

const TOKEN_KEY = 'callrouter.admin_token';
const t = (key, vars) => window.I18N.t(key, vars);

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** The route is not on this server yet (a part of the product built later). */
  get missing() {
    return (this.status === 404 && this.code === 'not_found') || this.status === 405;
  }
}

export function signIn() {
  location.assign(`/login?next=${encodeURIComponent('/admin')}`);
}

/** `await api('PUT', '/api/v1/settings', {...})`: the answer's JSON (null for 204), or an
 * ApiError with the API's code and message. 401/403 leave the page for the sign-in. */
export async function api(method, path, body, {signInOnDenied = true} = {}) {
  const headers = {'Accept': 'application/json', 'X-Requested-With': 'callrouter'};
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = {method, headers, credentials: 'same-origin'};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, 'network', t('error.network'));
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (err) { data = null; }
  if (resp.ok) return data;
  const error = (data && data.error) || {};
  // 403 `forbidden`: signed in, but not as the admin. Other 403s (csrf, …) are this request's.
  if (signInOnDenied && (resp.status === 401 || (resp.status === 403 && error.code === 'forbidden'))) {
    if (resp.status === 401 && token) localStorage.removeItem(TOKEN_KEY);  // no loop on a stale token
    signIn();
  }
  throw new ApiError(resp.status, error.code || `http_${resp.status}`,
    error.message || t('error.http', {status: resp.status}));
}

export async function signOut() {
  try {
    await api('POST', '/api/v1/auth/logout', {}, {signInOnDenied: false});
  } catch (err) {
    // Signed in with the kept token only, or already signed out: nothing to end.
  }
  localStorage.removeItem(TOKEN_KEY);
  signIn();
}

/** Every page of a list endpoint (the admin's lists are small; 500 a request). */
export async function all(path) {
  const items = [];
  for (let offset = 0; ; offset += 500) {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api('GET', `${path}${sep}limit=500&offset=${offset}`);
    items.push(...page.items);
    if (page.items.length === 0 || items.length >= page.total) return items;
  }
}

// ---- DOM helpers ----

export const $ = (selector, root = document) => root.querySelector(selector);

/** `el('td', {class: 'x', text: 'y'}, child, ...)`; text is set as text, never as HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') node.textContent = value;
    else if (name === 'class') node.className = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name in node && typeof value !== 'string') node[name] = value;
    else node.setAttribute(name, value === true ? '' : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

/** Show `text` in a status element for a few seconds (or for good with `keep`). */
export function flash(node, text, kind = 'ok', keep = false) {
  node.textContent = text;
  node.dataset.kind = kind;
  clearTimeout(node._flash);
  if (!keep && kind === 'ok') node._flash = setTimeout(() => { node.textContent = ''; }, 4000);
}

export function showError(node, text) {
  node.textContent = text || '';
  node.hidden = !text;
}

/** Copy the value or text of `source` (an element), saying so on `button`. */
export async function copy(source, button) {
  const text = 'value' in source ? source.value : source.textContent;
  let done = false;
  try {
    await navigator.clipboard.writeText(text);
    done = true;
  } catch (err) {
    // No clipboard permission (or not a secure context): select it and use the old command.
    const area = el('textarea', {class: 'copy-buffer', readonly: true});
    area.value = text;
    document.body.append(area);
    area.select();
    done = document.execCommand('copy');
    area.remove();
  }
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  button.textContent = done ? t('copied') : t('copy.failed');
  button.classList.toggle('copied', done);
  clearTimeout(button._copied);
  button._copied = setTimeout(() => {
    button.textContent = label;
    button.classList.remove('copied');
  }, 2000);
}

/** A list's pager: ‹ 1–20 of 45 › (hidden when one page holds everything). */
export function pager(node, {offset, limit, total}, go) {
  node.replaceChildren();
  if (total <= limit && offset === 0) return;
  const last = Math.min(offset + limit, total);
  node.append(
    el('button', {class: 'btn btn-small', type: 'button', disabled: offset === 0,
      text: t('pager.prev'), onclick: () => go(Math.max(0, offset - limit))}),
    el('span', {class: 'muted', text: t('pager.range', {from: total ? offset + 1 : 0, to: last, total})}),
    el('button', {class: 'btn btn-small', type: 'button', disabled: last >= total,
      text: t('pager.next'), onclick: () => go(offset + limit)}),
  );
}

/** An ISO time of the API in the page's language, in the account's zone. */
export function when(iso, timeZone) {
  if (!iso) return '';
  const options = {dateStyle: 'medium', timeStyle: 'medium'};
  if (timeZone) options.timeZone = timeZone;
  try {
    return new Intl.DateTimeFormat(window.I18N.lang === 'ru' ? 'ru-RU' : 'en-GB', options)
      .format(new Date(iso));
  } catch (err) {
    return iso;
  }
}

/** 86400 → "24 ч" / "1 d": seconds as a person reads them. */
export function duration(seconds) {
  const units = [['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];
  const parts = [];
  let rest = seconds;
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    if (n) parts.push(t(`unit.${unit}`, {n: window.I18N.number(n)}));
    rest -= n * size;
    if (parts.length === 2) break;
  }
  return parts.length ? parts.join(' ') : t('unit.second', {n: 0});
}
