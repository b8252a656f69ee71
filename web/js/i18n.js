// Every word the page shows, in the person's language: one table per language (i18n/en.js,
// i18n/ko.js), chosen from the browser's languages or the switch in the page (kept in
// localStorage). Strings carry {placeholders}; numbers, times and lists are formatted in
// the chosen locale.
//
//   t("calling", { name: "Ann" }) ──► "Calling Ann…" / "Ann 님에게 거는 중…"
//   <span data-i18n="people-heading">  ──► textContent from the table
//   <input data-i18n-attr="placeholder:name-placeholder">  ──► attributes from the table

import en from "./i18n/en.js";
import ko from "./i18n/ko.js";

export const TABLES = { en, ko };
/** Each language named in itself, for the switch. */
export const LANGUAGE_NAMES = { en: "English", ko: "한국어" };
const STORED = "duet.language";

/** The first of `preferred` (BCP 47 tags, the browser's order) that has a table; else English. */
export function pickLanguage(preferred) {
  for (const tag of preferred ?? []) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (base in TABLES) return base;
  }
  return "en";
}

function stored() {
  try {
    return localStorage.getItem(STORED);
  } catch {
    return null; // storage refused (private mode, a sandbox): the browser's choice stands
  }
}

let current = stored() in TABLES ? stored() : pickLanguage(navigator.languages ?? [navigator.language]);

export function language() {
  return current;
}

/** The string `key` in the page's language, with `{name}` placeholders filled in. */
export function t(key, vars = {}) {
  const text = TABLES[current][key] ?? TABLES.en[key];
  if (text === undefined) throw new Error(`no string "${key}"`);
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/** A number in the page's locale (`options` as Intl.NumberFormat takes them). */
export function number(value, options = {}) {
  return new Intl.NumberFormat(current, options).format(value);
}

/** Hours and minutes of `date` in the page's locale. */
export function time(date) {
  return date.toLocaleTimeString(current, { hour: "2-digit", minute: "2-digit" });
}

/** Fills every `data-i18n` text (with the names of `data-i18n-vars`, a JSON object) and
 *  `data-i18n-attr` attribute under `root`. */
export function translate(root = document) {
  document.documentElement.lang = current;
  for (const element of root.querySelectorAll("[data-i18n]")) {
    const vars = element.dataset.i18nVars ? JSON.parse(element.dataset.i18nVars) : {};
    element.textContent = t(element.dataset.i18n, vars);
  }
  for (const element of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of element.dataset.i18nAttr.split(",")) {
      const [attribute, key] = pair.split(":");
      element.setAttribute(attribute.trim(), t(key.trim()));
    }
  }
}

const listeners = [];

/** `listener` runs after each language switch (to redraw what code wrote). */
export function onLanguageChange(listener) {
  listeners.push(listener);
}

/** Switches the page to `lang` and remembers the choice. */
export function setLanguage(lang) {
  if (!(lang in TABLES) || lang === current) return;
  current = lang;
  try {
    localStorage.setItem(STORED, lang);
  } catch {
    // not remembered; the page still switches
  }
  translate();
  for (const listener of listeners) listener(lang);
}
