// Rooms: a link like /r/<room> gives a private user list; the lobby stays; the invite
// link can be copied; a new room is one click away.

import { test } from "node:test";
import assert from "node:assert/strict";
import { openPage, signIn, useDuetAndBrowser, userItem } from "../lib/harness.mjs";
import { assertMediaFlows, closeCleanly, twoPeopleInACall } from "../lib/assertions.mjs";

const env = useDuetAndBrowser();

test("people in a room see only each other, and the lobby sees none of them", async () => {
  const roomUrl = new URL("/r/book-club", env.duet.url).href;
  const ann = await openPage(env.browser, roomUrl);
  const bo = await openPage(env.browser, roomUrl);
  const lobby = await openPage(env.browser, env.duet.url);
  await signIn(ann, "ann");
  await signIn(bo, "bo");
  await signIn(lobby, "ann"); // the same name is free in another room
  await userItem(ann, "bo").waitFor();
  assert.deepEqual(await ann.locator("#userlistbox li").allTextContents(), ["bo", "echo"]);
  assert.deepEqual(await lobby.locator("#userlistbox li").allTextContents(), ["echo"], "echo is in every room");
  assert.match(await lobby.textContent("#whoami"), /Signed in as ann$/);
  assert.equal(await ann.textContent("#room-name"), "book-club");
  assert.equal(await lobby.isHidden("#room-info"), true);

  await ann.fill("#text", "only for the club");
  await ann.click("#send");
  await bo.locator("#chatbox li", { hasText: "only for the club" }).waitFor();
  assert.equal(await lobby.locator("#chatbox li").count(), 0);
  await closeCleanly(ann, bo, lobby);
});

test("a call works inside a room", async () => {
  const roomUrl = new URL("/r/call-room", env.duet.url).href;
  const [ann, bo] = await twoPeopleInACall(env, "room-ann", "room-bo", roomUrl);
  await assertMediaFlows(ann, "room-ann receives room-bo");
  await ann.click("#hangup-button");
  await closeCleanly(ann, bo);
});

test("the invite link is copied, and New private room opens a fresh room", async () => {
  const lobby = await openPage(env.browser, env.duet.url);
  await signIn(lobby, "host");
  assert.ok(await lobby.isVisible("#lobby-info"), "home says this is the lobby");
  await Promise.all([lobby.waitForURL(/\/r\/[A-Za-z0-9_-]{22}$/), lobby.click("#new-room-button")]);
  const roomUrl = lobby.url();
  const room = roomUrl.split("/r/")[1];
  await lobby.locator("#welcome .welcome-text", { hasText: `private room ${room}` }).waitFor();
  await signIn(lobby, "host");
  await lobby.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: new URL(roomUrl).origin });
  await lobby.locator("#room-info").waitFor();
  assert.equal(await lobby.isVisible("#lobby-info"), false);
  assert.equal(await lobby.inputValue("#invite-link"), roomUrl);
  await lobby.click("#invite-button");
  await lobby.locator("#status", { hasText: "Invite link copied" }).waitFor();
  assert.equal(await lobby.evaluate(() => navigator.clipboard.readText()), roomUrl);

  // Whoever opens the link lands in the same room.
  const guest = await openPage(env.browser, roomUrl);
  await signIn(guest, "guest");
  await userItem(guest, "host").waitFor();
  await closeCleanly(lobby, guest);
});
