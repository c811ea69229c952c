// The words of the pages in the reader's language. One table per language, `i18n/{lang}.js`
// (a module whose default export maps key → text, `{name}` for values put in). English is the
// reference: loaded with this module, it fills any key a table lacks. Adding a language: its
// file in web/i18n/, its tag in LANGS and its line in src/web/assets.rs.
//
// In the HTML, `data-i18n="key"` sets an element's text, and `data-i18n-attr="attr:key,…"`
// its attributes (aria-label, title, alt).

import english from "./i18n/en.js";

/** Languages that have a table. */
export const LANGS = ["en", "zh", "ar", "fr", "es", "ru", "de", "ja", "ko", "pt"];
/** Languages written right to left. */
export const RTL = new Set(["ar", "he", "fa", "ur"]);

let current = "en";
let table = english;

/** The primary tag of `tag` if it has a table, else null. */
function known(tag) {
  const primary = String(tag || "").toLowerCase().split("-")[0];
  return LANGS.includes(primary) ? primary : null;
}

/** The first of `tags` with a table, then the browser's languages, then English. */
export function pick(...tags) {
  for (const t of [...tags, ...(navigator.languages || [navigator.language])]) {
    const k = known(t);
    if (k) return k;
  }
  return "en";
}

/** The table of `lang` (a module import: fetched once, then shared). English if it fails. */
function load(lang) {
  if (lang === "en") return Promise.resolve(english);
  return import(`./i18n/${lang}.js`).then((m) => m.default).catch(() => english);
}

/** Starts fetching the table of a language guessed early, without waiting for it. */
export function prefetch(tag) {
  const k = known(tag);
  if (k) load(k);
}

/** The current language. */
export function lang() {
  return current;
}

/**
 * Makes `wanted` (or English) the page's language: loads its table, sets `<html lang dir>`
 * and the words of every `data-i18n` element. Resolves when applied.
 */
export async function use(wanted) {
  const next = known(wanted) || "en";
  const t = await load(next);
  current = next;
  table = t;
  document.documentElement.lang = next;
  document.documentElement.dir = RTL.has(next) ? "rtl" : "ltr";
  apply(document);
}

/** The text of `key` with `{name}` replaced from `vars`. */
export function t(key, vars = {}) {
  const s = table[key] ?? english[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** Sets the words of every `data-i18n` / `data-i18n-attr` element under `root`. */
export function apply(root) {
  for (const e of root.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of e.dataset.i18nAttr.split(",")) {
      const [attr, key] = pair.split(":");
      e.setAttribute(attr.trim(), t(key.trim()));
    }
  }
}
