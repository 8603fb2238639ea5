/* admin.js — the admin's settings page (/admin): who is signed in, the language, and the page's
 * sections, each in a module of its own. Russian by default (admin-strings.js). */

import './admin-strings.js';
import {$, ApiError, api, copy, showError, signOut} from './admin-api.js';
import {initIntegration} from './admin-integration.js';
import {initInspect} from './admin-inspect.js';
import {initPeople} from './admin-people.js';
import {initReconcile} from './admin-reconcile.js';
import {initRouting} from './admin-routing.js';
import {initSettings} from './admin-settings.js';

const t = (key, vars) => window.I18N.t(key, vars);

async function who() {
  try {
    const me = await api('GET', '/api/v1/me');
    $('#who').textContent = me.full_name || t('role.admin');
  } catch (err) {
    // Before the sign-in part is on the server there is no /me: the admin token is all we know.
    if (!(err instanceof ApiError) || !err.missing) throw err;
    $('#who').textContent = t('role.admin');
  }
}

async function main() {
  window.I18N.apply(document);
  $('#lang-slot').append(window.I18N.switcher());
  $('#signout').addEventListener('click', signOut);
  // A form's old complaint goes as soon as the admin starts correcting it.
  document.addEventListener('input', (event) => {
    const form = event.target.closest('.inline-form');
    if (form) for (const node of form.querySelectorAll('.field-error')) showError(node, '');
  });
  document.addEventListener('click', (event) => {
    const button = event.target.closest('[data-copy]');
    if (button) copy($(button.dataset.copy), button);
  });
  const sections = await Promise.allSettled([
    who(),
    initIntegration(),
    initPeople(),
    initRouting(),
    initReconcile(),
    initSettings().then(initInspect),
  ]);
  const failed = sections.find((s) => s.status === 'rejected');
  document.body.classList.remove('loading');
  if (failed) {
    const denied = failed.reason instanceof ApiError && [401, 403].includes(failed.reason.status);
    if (!denied) {
      $('#page-error').textContent = t('error.load', {message: failed.reason.message || String(failed.reason)});
      $('#page-error').hidden = false;
    }
  }
  document.body.classList.add('ready');
}

main();
