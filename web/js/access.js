// Who may come in: the server's access mode, signing in (the server's password, an
// account, an invite link), signing out, and invite links made by admins.
//
// The session lives in an HttpOnly cookie this script never sees; the server says what
// it means at /api/access. The page connects to signaling only once the server would
// let it (open mode, or a session); until then this module shows the sign-in panel.
//
//   /i/<token> ──► POST /api/sign-in {invite} ──► /r/<room> (or /), signed in
//   members: account form + "ask for an invite link"; password: password box + account

import { TABLES, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

/** The server's refusal in the page's language: its code's words, else its own. */
function refusal(data, fallback) {
  const key = `error-${data?.error}`;
  return key in TABLES.en ? t(key) : (data?.message ?? t(fallback));
}

async function api(path, body) {
  const init = body === undefined
    ? { cache: "no-store" }
    : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    return { ok: false, status: 0, data: { error: "offline", message: t("server-unreachable") } };
  }
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = { error: "bad-answer", message: t("server-answered", { status: response.status }) };
  }
  return { ok: response.ok, status: response.status, data };
}

/** The invite token in an `/i/<token>` address. */
export function inviteToken(location) {
  const match = location.pathname.match(/^\/i\/([A-Za-z0-9_.-]{1,1024})$/);
  return match ? match[1] : null;
}

function showError(text) {
  const error = $("access-error");
  error.textContent = text ?? "";
  error.hidden = !text;
}

/** Shows the sign-in panel for `mode` (or hides it once signed in). */
function renderPanel(info) {
  const needed = info.mode !== "open" && !info.signedIn;
  const nothingToSay = info.mode === "open" && !info.accounts && !$("access-error").textContent;
  $("access-panel").hidden = Boolean(info.signedIn) || nothingToSay;
  const mode = ["password", "members"].includes(info.mode) ? `mode-${info.mode}` : null;
  if (mode) $("access-mode").dataset.i18n = mode;
  $("access-mode").textContent = mode ? t(mode) : "";
  $("access-mode").hidden = info.mode === "open";
  $("password-form").hidden = info.mode !== "password";
  $("account-details").open = info.mode === "members";
  // An open server without accounts: nothing to sign in with.
  $("account-details").hidden = info.mode === "open" && !info.accounts;
  $("ask-invite").hidden = info.mode !== "members";
  $("login-form").hidden = needed;
  $("new-room-button").hidden = needed; // nothing to make before coming in
  if (needed) (info.mode === "password" ? $("access-password") : $("account-name")).focus();
}

let shown = null; // what the server last said, to draw again in another language

/** Draws the panel and the session line again (after a language switch). */
export function redraw() {
  if (shown) renderSession(shown);
}

/** Shows who the session is, with sign-out buttons and, for admins, invite links. */
function renderSession(info) {
  shown = info;
  const signedIn = Boolean(info.signedIn);
  $("session-info").hidden = !signedIn;
  if (!signedIn) return;
  const what = info.account
    ? t("signed-in-account", { name: info.account })
    : info.name
      ? t("invited-as", { name: info.name })
      : info.room
        ? t("invited-to-room", { room: info.room })
        : t("signed-in-password");
  $("session-text").textContent = what;
  $("sign-out-everywhere-button").hidden = !info.account;
  $("make-invite-button").hidden = !info.admin;
  // An invite for one room opens no other: no new rooms to make.
  if (info.room) $("new-room-button").hidden = true;
  if (info.name) {
    // The name comes with the session: nothing to type, nothing to rename.
    $("name").value = info.name;
    $("name").readOnly = true;
    $("login-form").hidden = true;
  }
}

async function submitSignIn(body) {
  showError(null);
  const result = await api("/api/sign-in", body);
  if (!result.ok) {
    showError(refusal(result.data, "sign-in-failed"));
    return null;
  }
  return result.data;
}

/**
 * Resolves with what the server says about this page's session once the page may
 * connect: at once in open mode or with a session, else after the person signs in
 * (`waiting` is called when the page has to wait for that).
 */
export async function admit(location, history, waiting) {
  let info = (await api("/api/access")).data;
  const token = inviteToken(location);
  if (token) {
    const result = await api("/api/sign-in", { invite: token });
    if (result.ok) {
      info = result.data;
    } else {
      showError(t("ask-for-new-invite", { why: refusal(result.data, "invite-broken") }));
    }
    history.replaceState(null, "", "/");
  }
  if (info.room && !location.pathname.startsWith(`/r/${info.room}`)) history.replaceState(null, "", `/r/${info.room}`);
  renderPanel(info);
  renderSession(info);
  if (info.signedIn || info.mode === "open") return info;
  waiting();
  return new Promise((resolve) => {
    const done = (data) => {
      if (!data) return;
      renderPanel(data);
      renderSession(data);
      resolve(data);
    };
    $("password-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      done(await submitSignIn({ password: $("access-password").value }));
    });
    $("account-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      done(await submitSignIn({ account: $("account-name").value.trim(), password: $("account-password").value }));
    });
  });
}

/** In open mode an account may still sign in (to be verified): the form reloads the page. */
export function offerAccountSignIn() {
  $("account-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await submitSignIn({ account: $("account-name").value.trim(), password: $("account-password").value })) {
      window.location.reload();
    }
  });
}

/** Whether the server would let this page in now (checked after a refused WebSocket). */
export async function stillAdmitted() {
  const info = (await api("/api/access")).data;
  return info.mode === "open" || info.signedIn === true;
}

export async function signOut(everywhere) {
  await api(everywhere ? "/api/sign-out-everywhere" : "/api/sign-out", {});
}

/** An admin's invite link for `room`, as a full address. */
export async function makeInvite({ room, name, ttl, uses }) {
  const result = await api("/api/invites", { room: room || undefined, name: name || undefined, ttl, uses });
  if (!result.ok) throw new Error(refusal(result.data, "invite-not-made"));
  return { link: `${window.location.origin}${result.data.path}`, ...result.data };
}

/** The session ended while the page was open (signed out here or elsewhere, revoked). */
export function showSignedOut(mode) {
  $("session-info").hidden = true;
  showError(t("signed-out-come-back"));
  renderPanel({ mode, signedIn: false, accounts: true });
  $("login-form").hidden = true;
}

/**
 * The controls of a signed-in page: Sign out, Sign out everywhere, and for admins the
 * "Invite someone" form for `room`. `leaving` runs before signing out (end the call,
 * close the socket).
 */
export function wireControls({ room, leaving, say }) {
  for (const [id, everywhere] of [["sign-out-button", false], ["sign-out-everywhere-button", true]]) {
    $(id).addEventListener("click", async () => {
      leaving();
      await signOut(everywhere);
      window.location.assign("/");
    });
  }
  const form = $("make-invite-form");
  $("make-invite-button").addEventListener("click", () => {
    form.hidden = !form.hidden;
    $("make-invite-button").setAttribute("aria-expanded", String(!form.hidden));
    if (!form.hidden) $("invite-name").focus();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const made = await makeInvite({
        room,
        name: $("invite-name").value.trim(),
        ttl: $("invite-ttl").value,
        uses: Number($("invite-uses").value) || 1,
      });
      $("made-invite-link").value = made.link;
      $("made-invite-link").hidden = false;
      $("copy-made-invite").hidden = false;
      $("made-invite-link").select();
      const key = `invite-made${made.name ? "-for" : ""}${made.uses === 1 ? "" : "-uses"}`;
      say(t(key, { name: made.name, uses: made.uses }), "ok");
    } catch (err) {
      say(err.message, "error");
    }
  });
  $("copy-made-invite").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($("made-invite-link").value);
      say(t("invite-copied"), "ok");
    } catch {
      $("made-invite-link").select();
      say(t("copy-selected-link"));
    }
  });
}
