/* HTTP for the statistics page: the JSON API as the signed-in person, errors as exceptions.
 *
 * The page signs in with the session cookie (same origin; `X-Requested-With` marks the request
 * as the page's own, the CSRF rule of the sign-in). A staff token that the console keeps in
 * this browser (`callrouter.token`) is sent as a bearer token too; when the server refuses it,
 * the page tries once more on the cookie alone and forgets the token for this visit. Without
 * either, the page goes to the sign-in page and comes back here afterwards.
 */

const TOKEN_KEY = 'callrouter.token';
let token = localStorage.getItem(TOKEN_KEY) || null;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** True while the page authenticates with a bearer token (a plain link cannot carry it). */
export function usingToken() {
  return token !== null;
}

function options(method) {
  const headers = {'X-Requested-With': 'callrouter', Accept: 'application/json'};
  if (token) headers.Authorization = `Bearer ${token}`;
  return {method, headers, credentials: 'same-origin'};
}

export function signIn() {
  const next = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(next)}`);
}

/** `fetch` as the signed-in person; 401 goes to the sign-in page (and never resolves). */
export async function send(path, method = 'GET') {
  let resp;
  try {
    resp = await fetch(path, options(method));
    if (resp.status === 401 && token) {
      token = null; // refused: the session cookie may still sign this browser in
      resp = await fetch(path, options(method));
    }
  } catch (err) {
    throw new ApiError(0, 'network', err.message);
  }
  if (resp.status === 401) {
    signIn();
    return new Promise(() => {});
  }
  return resp;
}

/** The JSON body of a GET; ApiError with the API's code and message otherwise. */
export async function getJson(path) {
  const resp = await send(path);
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  if (!resp.ok) {
    const error = (body && body.error) || {};
    throw new ApiError(resp.status, error.code || `http_${resp.status}`, error.message || resp.statusText);
  }
  return body;
}

/** Download `path` as a file with the bearer token (what a link does with the cookie). */
export async function download(path, fallbackName) {
  const resp = await send(path);
  if (!resp.ok) throw new ApiError(resp.status, `http_${resp.status}`, resp.statusText);
  const disposition = resp.headers.get('Content-Disposition') || '';
  const match = /filename="([^"]+)"/.exec(disposition);
  const url = URL.createObjectURL(await resp.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = match ? match[1] : fallbackName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export async function signOut() {
  try {
    await fetch('/api/v1/auth/logout', {...options('POST'), headers: {'X-Requested-With': 'callrouter'}});
  } catch {
    // Signed out or not, this browser forgets the person below.
  }
  localStorage.removeItem(TOKEN_KEY);
  token = null;
  location.assign('/login?next=%2Fstats');
}
