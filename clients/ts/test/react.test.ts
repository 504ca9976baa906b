// useKv with React Testing Library in jsdom, over a fake router: the
// initial load, a live update, an update refused as a conflict, and the
// stream closed on unmount.

import "./dom.js";

import assert from "node:assert/strict";
import { test } from "node:test";

import { act, renderHook, waitFor } from "@testing-library/react";
import { createKvClient, KvError } from "kv-client";
import { useKv } from "kv-client/react";

import type { SiteBannerTable } from "./bindings/tables.js";
import { FakeRouter } from "./fake.js";

function setup() {
  const router = new FakeRouter();
  router.write({ active: true, message: "Back at 5pm" });
  const client = createKvClient<SiteBannerTable>("/api/kv/site", { fetch: router.fetch });
  const hook = renderHook(() => useKv(client, "banner"));
  return { router, ...hook };
}

test("loads the row, then follows changes made elsewhere", async () => {
  const { router, result, unmount } = setup();
  assert.equal(result.current.loading, true);
  assert.equal(result.current.data === null, true);
  await waitFor(() => assert.equal(result.current.loading, false));
  assert.equal(result.current.data?.value.message, "Back at 5pm");
  assert.equal(result.current.status, "live");
  assert.equal(result.current.error, null);

  act(() => {
    router.write({ active: true, message: "Back at 6pm" });
  });
  await waitFor(() => assert.equal(result.current.data?.value.message, "Back at 6pm"));
  unmount();
});

test("update over a stale version rejects with CONFLICT and shows it in error", async () => {
  const { router, result, unmount } = setup();
  await waitFor(() => assert.equal(result.current.loading, false));
  const loaded = result.current.data;
  assert.ok(loaded);

  const saved = await act(() =>
    result.current.update({ active: true, message: "mine" }, { expectedUpdatedAt: loaded.updated_at }),
  );
  assert.equal(saved.value.message, "mine");
  assert.equal(result.current.data?.value.message, "mine");

  // Someone else saves; an update based on the old version is refused.
  act(() => {
    router.write({ active: true, message: "theirs" });
  });
  await waitFor(() => assert.equal(result.current.data?.value.message, "theirs"));
  await act(async () => {
    await assert.rejects(
      result.current.update({ active: false, message: "stale" }, { expectedUpdatedAt: saved.updated_at }),
      (error) => error instanceof KvError && error.code === "CONFLICT",
    );
  });
  const error = result.current.error;
  assert.equal(error?.code, "CONFLICT");
  assert.equal(error?.current_updated_at, router.row?.updated_at);
  assert.equal(router.row?.value.message, "theirs");
  // Creating it as if absent is a conflict too.
  await act(async () => {
    await assert.rejects(result.current.update({ active: true, message: "new" }, { expectedUpdatedAt: null }));
  });

  // remove and restore go through the same client.
  await act(async () => {
    assert.equal(await result.current.remove(), true);
  });
  assert.equal(result.current.data === null, true);
  assert.equal(result.current.error, null);
  await act(() => result.current.restore());
  assert.equal(result.current.data?.value.message, "theirs");
  unmount();
});

test("unmounting closes the event stream and opens no other", async () => {
  const { router, result, unmount } = setup();
  await waitFor(() => assert.equal(result.current.loading, false));
  assert.equal(router.streams.size, 1);
  unmount();
  assert.equal(router.streams.size, 0);
  const requests = router.requests.length;
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.equal(router.requests.length, requests, "no reconnect after unmount");
});
