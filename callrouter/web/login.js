/* The sign-in page: email and password, or the admin token of the first start
 * (POST /api/v1/auth/login sets the session cookie), then on to `?next=` when it is a path of
 * this site, else to the role's page (admin → /admin, staff → /). Errors in words: a wrong
 * pair, a deactivated account, too many attempts with the wait counting down. */

const t = (key, vars) => I18N.t(key, vars);
const $ = (id) => document.getElementById(id);

/** `raw` as a path of this site to go to after signing in, or null: never another origin
 * (`//evil.example`, `https://…`, `/\evil`), never the sign-in page itself. */
export function safeNext(raw) {
  if (!raw || !raw.startsWith('/') || raw.startsWith('//') || raw.startsWith('/\\')) return null;
  let url;
  try {
    url = new URL(raw, location.origin);
  } catch {
    return null;
  }
  if (url.origin !== location.origin || url.pathname === '/login') return null;
  return url.pathname + url.search + url.hash;
}

function destination(role) {
  const next = safeNext(new URLSearchParams(location.search).get('next'));
  return next || (role === 'admin' ? '/admin' : '/');
}

function waitText(seconds) {
  return seconds >= 60
    ? t('wait.minutes', {n: Math.ceil(seconds / 60)})
    : t('wait.seconds', {n: Math.max(1, Math.ceil(seconds))});
}

/** One sign-in form: its fields, its error line, its button (and a countdown when the
 * server asks to wait). */
class SignInForm {
  constructor(form, errorEl, button, body, errors) {
    this.form = form;
    this.errorEl = errorEl;
    this.button = button;
    this.body = body; // () => request body, or null when a field is empty
    this.errors = errors; // {missing, wrong}: the keys of this form's messages
    this.until = 0;
    this.timer = null;
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.submit();
    });
  }

  show(text) {
    this.errorEl.textContent = text;
    this.errorEl.hidden = !text;
  }

  async submit() {
    if (Date.now() < this.until) return;
    const body = this.body();
    if (!body) {
      this.show(t(this.errors.missing));
      return;
    }
    this.show('');
    this.button.disabled = true;
    this.button.textContent = t('submitting');
    let resp;
    try {
      resp = await fetch('/api/v1/auth/login', {
        method: 'POST',
        credentials: 'same-origin',
        headers: {'Content-Type': 'application/json', 'X-Requested-With': 'callrouter'},
        body: JSON.stringify(body),
      });
    } catch {
      this.done();
      this.show(t('error.network'));
      return;
    }
    if (resp.ok) {
      const who = await resp.json();
      location.replace(destination(who.role));
      return;
    }
    this.done();
    const code = await resp.json().then((b) => b && b.error && b.error.code, () => null);
    if (resp.status === 429) {
      this.countdown(Number(resp.headers.get('Retry-After')) || 60);
    } else if (resp.status === 403 && code === 'deactivated') {
      this.show(t('error.deactivated'));
    } else if (resp.status === 401) {
      this.show(t(this.errors.wrong));
    } else if (resp.status === 422) {
      this.show(t(this.errors.missing));
    } else {
      this.show(t('error.other', {status: resp.status}));
    }
  }

  done() {
    this.button.disabled = false;
    this.button.textContent = t('submit');
  }

  countdown(seconds) {
    this.until = Date.now() + seconds * 1000;
    clearInterval(this.timer);
    const tick = () => {
      const left = (this.until - Date.now()) / 1000;
      if (left <= 0) {
        clearInterval(this.timer);
        this.button.disabled = false;
        this.show('');
        return;
      }
      this.button.disabled = true;
      this.show(t('error.throttled', {wait: waitText(left)}));
    };
    tick();
    this.timer = setInterval(tick, 1000);
  }
}

function switchTo(showToken) {
  $('password-form').hidden = showToken;
  $('token-form').hidden = !showToken;
  (showToken ? $('admin-token') : $('email')).focus();
}

function start() {
  I18N.apply(document);
  $('lang-slot').append(I18N.switcher());
  new SignInForm(
    $('password-form'),
    $('password-error'),
    $('password-submit'),
    () => {
      const email = $('email').value.trim();
      const password = $('password').value;
      return email && password ? {email, password} : null;
    },
    {missing: 'error.missing', wrong: 'error.wrong'},
  );
  new SignInForm(
    $('token-form'),
    $('token-error'),
    $('token-submit'),
    () => {
      const token = $('admin-token').value.trim();
      return token ? {admin_token: token} : null;
    },
    {missing: 'error.missingToken', wrong: 'error.token'},
  );
  $('to-token').addEventListener('click', () => switchTo(true));
  $('to-password').addEventListener('click', () => switchTo(false));
  switchTo(location.hash === '#admin-token');
}

start();
