/* i18n.js — the pages' two languages (issue 9): Russian by default (the contact centres UIS
 * serves speak it), English when the browser prefers it or the user switches; the choice is
 * kept in this browser.
 *
 * A page registers its own strings and reads them back:
 *   I18N.register({ru: {'signin.title': 'Вход'}, en: {'signin.title': 'Sign in'}});
 *   I18N.t('calls.count', {n: 3})           // "{n}" placeholders
 *   <h1 data-i18n="signin.title"></h1>       // filled by I18N.apply(document)
 *   <input data-i18n-placeholder="…">        // attributes: data-i18n-<attribute>
 *   I18N.switcher()                           // a <select> that switches and reloads
 * A key missing in the current language falls back to Russian, then to the key itself, so a
 * gap shows as a readable key in tests instead of an empty label.
 */
(function () {
  'use strict';
  const KEY = 'callrouter.lang';
  const LANGS = {ru: 'Русский', en: 'English'};
  const strings = {ru: {}, en: {}};

  function detect() {
    const kept = localStorage.getItem(KEY);
    if (kept && LANGS[kept]) return kept;
    const prefs = navigator.languages && navigator.languages.length
      ? navigator.languages : [navigator.language || 'ru'];
    for (const pref of prefs) {
      const code = String(pref).slice(0, 2).toLowerCase();
      if (code === 'ru') return 'ru';
      if (code === 'en') return 'en';
    }
    return 'ru';
  }

  const lang = detect();
  document.documentElement.lang = lang;

  function t(key, vars) {
    let text = strings[lang][key] ?? strings.ru[key] ?? key;
    if (vars) text = text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
    return text;
  }

  function register(dict) {
    for (const code of Object.keys(LANGS)) Object.assign(strings[code], dict[code] || {});
  }

  function apply(root) {
    for (const el of (root || document).querySelectorAll('*')) {
      for (const attr of el.getAttributeNames()) {
        if (attr === 'data-i18n') el.textContent = t(el.getAttribute(attr));
        else if (attr.startsWith('data-i18n-')) el.setAttribute(attr.slice(10), t(el.getAttribute(attr)));
      }
    }
  }

  function setLang(code) {
    if (!LANGS[code]) return;
    localStorage.setItem(KEY, code);
    location.reload();
  }

  function switcher() {
    const select = document.createElement('select');
    select.className = 'lang-switch';
    select.setAttribute('aria-label', 'Язык / Language');
    select.dataset.testid = 'lang-switch';
    for (const [code, name] of Object.entries(LANGS)) {
      const option = new Option(name, code, false, code === lang);
      select.append(option);
    }
    select.addEventListener('change', () => setLang(select.value));
    return select;
  }

  // Numbers and times in the page's language.
  const number = new Intl.NumberFormat(lang === 'ru' ? 'ru-RU' : 'en-GB');

  window.I18N = {lang, t, register, apply, setLang, switcher, number: (n) => number.format(n)};
})();
