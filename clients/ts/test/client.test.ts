// The client against the real router: the Rust test server
// (examples/ts_test_server.rs) serving the demo's banner table and a notes
// table, over an SQLite file that outlives a restart.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { createKvClient, isKvError, KvError, type WatchState, type WatchStatus } from "kv-client";

import type { Note, NoteTable, SiteBanner, SiteBannerRow, SiteBannerTable } from "./bindings/tables.js";
import { startServer, until, type TestServer } from "./server.js";

const dir = mkdtempSync(join(tmpdir(), "kv-ts-client-"));
const store = `sqlite://${join(dir, "kv.db")}`;
let server: TestServer;

before(async () => {
  server = await startServer(store);
});

after(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

// The demo's sign-in cookie makes an admin; no cookie is a visitor.
const site = (cookie?: string) =>
  createKvClient<SiteBannerTable>(`${server.url}/api/kv/site`, cookie ? { headers: { cookie } } : {});
const notes = (name?: string) =>
  createKvClient<NoteTable>(`${server.url}/api/kv/notes/`, {
    headers: () => (name ? { authorization: `Bearer ${name}` } : {}),
  });

const banner = (message: string, active = true): SiteBanner => ({ active, message });
const note = (title: string): Note => ({
  title,
  tags: ["ts"],
  priority: "normal",
  pinnedUntil: null,
  status: { state: "published", at: 1_718_000_000_000 },
});

/** The KvError a call rejects with. */
async function failure(call: Promise<unknown>): Promise<KvError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof KvError, `not a KvError: ${error}`);
    return error;
  }
  assert.fail("the call succeeded");
}

test("restore before any write is NOT_FOUND", async () => {
  const error = await failure(site("kv_demo_user=ada").restore("banner"));
  assert.equal(error.code, "NOT_FOUND");
  assert.equal(error.status, 404);
});

test("get, set and get again", async () => {
  const admin = site("kv_demo_user=ada");
  assert.equal(await admin.get("banner"), null);
  const row = await admin.set("banner", banner("Back at 5pm"));
  assert.equal(row.key, "banner");
  assert.deepEqual(row.value, banner("Back at 5pm"));
  assert.equal(row.updated_by, "ada");
  assert.ok(row.updated_at >= row.created_at);
  assert.deepEqual(await site().get("banner"), row);
});

test("a write over a stale version is a CONFLICT carrying the current version", async () => {
  const admin = site("kv_demo_user=ada");
  const first = await admin.set("banner", banner("one"));
  const second = await admin.setExpecting("banner", banner("two"), first.updated_at);
  assert.ok(second.updated_at > first.updated_at);

  const stale = await failure(admin.setExpecting("banner", banner("three"), first.updated_at));
  assert.equal(stale.code, "CONFLICT");
  assert.equal(stale.status, 409);
  assert.equal(stale.current_updated_at, second.updated_at);

  const present = await failure(admin.setIfAbsent("banner", banner("four")));
  assert.equal(present.code, "CONFLICT");
  assert.equal(present.current_updated_at, second.updated_at);
  assert.deepEqual((await admin.get("banner"))?.value, banner("two"));
});

test("a visitor's write is FORBIDDEN, a bad credential UNAUTHORIZED", async () => {
  const forbidden = await failure(site().set("banner", banner("defaced")));
  assert.equal(forbidden.code, "FORBIDDEN");
  assert.equal(forbidden.status, 403);
  assert.match(forbidden.body.required ?? "", /admin/);
  assert.ok(isKvError(forbidden, "FORBIDDEN"));
  assert.deepEqual((await site().get("banner"))?.value, banner("two"));

  const unauthorized = await failure(notes("not a name").set("n", note("x")));
  assert.equal(unauthorized.code, "UNAUTHORIZED");
  assert.equal(unauthorized.status, 401);
});

test("a value breaking a constraint is VALIDATION_FAILED naming the field", async () => {
  const error = await failure(notes("ada").set("n", note("")));
  assert.equal(error.code, "VALIDATION_FAILED");
  assert.equal(error.status, 422);
  assert.equal(error.fields?.[0]?.path, "title");
});

test("rm, then restore brings the row back", async () => {
  const admin = site("kv_demo_user=ada");
  const before = await admin.get("banner");
  assert.ok(before);
  assert.equal(await admin.rm("banner"), true);
  assert.equal(await admin.get("banner"), null);
  assert.equal(await admin.rm("banner"), false);
  const restored = await admin.restore("banner");
  assert.deepEqual(restored.value, before.value);
  assert.deepEqual((await admin.get("banner"))?.value, before.value);
});

test("free keys: any text, percent-encoded in the path; list pages in key order", async () => {
  const editor = notes("ada");
  for (const key of ["b/2", "a 1", "c?3"]) await editor.set(key, note(`note ${key}`));
  assert.deepEqual((await editor.get("a 1"))?.value, note("note a 1"));
  const first = await editor.list({ limit: 2 });
  assert.deepEqual(
    first.page.map((r) => r.key),
    ["a 1", "b/2"],
  );
  assert.equal(first.is_done, false);
  const rest = await editor.list({ cursor: first.continue_cursor, limit: 2 });
  assert.deepEqual(
    rest.page.map((r) => r.key),
    ["c?3"],
  );
  assert.equal(rest.is_done, true);
  assert.equal((await failure(notes().list())).code, "FORBIDDEN");
  const limit = await failure(editor.list({ limit: 0 }));
  assert.equal(limit.code, "VALIDATION_FAILED");
});

test("an unreachable server is BACKEND with status 0", async () => {
  const nowhere = createKvClient<SiteBannerTable>("http://127.0.0.1:9/api/kv/site");
  const error = await failure(nowhere.get("banner"));
  assert.equal(error.code, "BACKEND");
  assert.equal(error.status, 0);
});

/** A watch recording its states, statuses and errors. */
function record(watchOn: ReturnType<typeof site>, minDelayMs = 100) {
  const states: WatchState<SiteBannerRow>[] = [];
  const statuses: WatchStatus[] = [];
  const errors: KvError[] = [];
  const watch = watchOn.watch("banner", (s) => states.push(s), {
    onStatus: (s) => statuses.push(s),
    onError: (e) => errors.push(e),
    minDelayMs,
    maxDelayMs: 1000,
  });
  const last = () => states.at(-1);
  return { watch, states, statuses, errors, last };
}

test("watch gets the current state, then a change made by another client", async () => {
  const admin = site("kv_demo_user=ada");
  await admin.set("banner", banner("watched"));
  const visitor = record(site());
  try {
    await until("the first state", () => visitor.states.length === 1);
    assert.equal(visitor.last()?.row?.value.message, "watched");
    assert.equal(visitor.last()?.resynced, false);
    assert.equal(visitor.watch.status, "live");

    await admin.set("banner", banner("changed elsewhere"));
    await until("the change", () => visitor.last()?.row?.value.message === "changed elsewhere");
    assert.equal(visitor.last()?.resynced, false);
    await admin.rm("banner");
    await until("the deletion", () => visitor.last()?.row === null);
    await admin.restore("banner");
    await until("the restore", () => visitor.last()?.row?.value.message === "changed elsewhere");
  } finally {
    visitor.watch.close();
  }
  assert.equal(visitor.watch.status, "closed");
});

test("watch reconnects after the server restarts, and flags the first state resynced", async () => {
  const admin = site("kv_demo_user=ada");
  await admin.set("banner", banner("before the restart"));
  const visitor = record(site());
  try {
    await until("the first state", () => visitor.last()?.row?.value.message === "before the restart");
    const port = server.port;
    await server.stop();
    await until("the watch to notice", () => visitor.watch.status === "reconnecting");
    server = await startServer(store, port);
    await until("the resynced state", () => visitor.last()?.resynced === true, 20_000);
    assert.equal(visitor.last()?.row?.value.message, "before the restart");
    assert.ok(visitor.statuses.includes("reconnecting"));
    assert.equal(visitor.watch.status, "live");

    await admin.set("banner", banner("after the restart"));
    await until("the change after the restart", () => visitor.last()?.row?.value.message === "after the restart");
    assert.equal(visitor.last()?.resynced, false);
  } finally {
    visitor.watch.close();
  }
});

test("a refused stream (TOO_MANY_STREAMS) is retried after its Retry-After", async () => {
  // The router allows 16 streams per client: hold them all.
  const held: AbortController[] = [];
  try {
    for (let i = 0; i < 16; i++) {
      const abort = new AbortController();
      const response = await fetch(`${server.url}/api/kv/site/banner/events`, { signal: abort.signal });
      assert.equal(response.status, 200);
      held.push(abort);
    }
    const visitor = record(site());
    try {
      await until("the refusal", () => visitor.errors.some((e) => e.code === "TOO_MANY_STREAMS"));
      const refused = visitor.errors.find((e) => e.code === "TOO_MANY_STREAMS");
      assert.equal(refused?.status, 429);
      assert.equal(refused?.retryAfterMs, 5000);
      assert.equal(refused?.body.scope, "client");
      assert.equal(visitor.states.length, 0);
      assert.equal(visitor.watch.status, "reconnecting");
      for (const abort of held.splice(0)) abort.abort();
      await until("a state once a slot is free", () => visitor.states.length > 0, 30_000);
      assert.equal(visitor.last()?.resynced, false);
    } finally {
      visitor.watch.close();
    }
  } finally {
    for (const abort of held) abort.abort();
  }
});

test("history lists the changes newest first, and revert goes back to one over the version seen", async () => {
  const admin = site("kv_demo_user=ada");
  const one = await admin.set("banner", banner("history one"));
  const two = await admin.set("banner", banner("history two", false));
  const page = await admin.history("banner", { limit: 2 });
  assert.deepEqual(
    page.entries.map((e) => [e.op, e.version, e.value.message, e.updated_by]),
    [
      ["set", two.updated_at, "history two", "ada"],
      ["set", one.updated_at, "history one", "ada"],
    ],
  );
  assert.equal(page.entries[0]?.value.active, false);
  assert.equal(page.entries[0]?.key, "banner");
  assert.equal(page.is_done, false);
  assert.ok(page.continue_cursor);
  const older = await admin.history("banner", { limit: 2, cursor: page.continue_cursor });
  assert.ok(older.entries.length > 0 && older.entries.every((e) => e.version < one.updated_at));

  const stale = await failure(admin.revert("banner", one.updated_at, { expectedUpdatedAt: one.updated_at }));
  assert.equal(stale.code, "CONFLICT");
  assert.equal(stale.current_updated_at, two.updated_at);
  const back = await admin.revert("banner", one.updated_at, { expectedUpdatedAt: two.updated_at });
  assert.deepEqual(back.value, banner("history one"));
  assert.ok(back.updated_at > two.updated_at);
  const again = await admin.revert("banner", two.updated_at);
  assert.deepEqual(again.value, banner("history two", false));
  const newest = (await admin.history("banner", { limit: 1 })).entries[0];
  assert.deepEqual([newest?.op, newest?.version], ["set", again.updated_at]);

  const missing = await failure(admin.revert("banner", 1));
  assert.equal(missing.code, "NOT_FOUND");
  assert.equal(missing.status, 404);
  assert.equal(missing.body.version, 1);
  const forbidden = await failure(site().history("banner"));
  assert.equal(forbidden.code, "FORBIDDEN");
  const refused = await failure(site().revert("banner", one.updated_at));
  assert.equal(refused.code, "FORBIDDEN");
  assert.deepEqual((await site().get("banner"))?.value, banner("history two", false));
});
