// The correct spellings compile: declared keys, free keys, restore on a
// soft-delete table, history and revert on a table with history, error
// codes and their details.
import { createKvClient, isKvError } from "kv-client";

import type { NoteTable, SiteBannerTable } from "../../test/bindings/tables.js";

const site = createKvClient<SiteBannerTable>("/api/kv/site");
const row = await site.get("banner");
if (row) await site.setExpecting("banner", { ...row.value, active: false }, row.updated_at);
await site.restore("banner");
const changes = await site.history("banner", { limit: 10 });
const previous = changes.entries[1];
if (previous) {
  const { op, value, updated_by } = previous;
  console.log(op === "rm" ? "cleared" : value.message, updated_by);
  await site.revert("banner", previous.version, { expectedUpdatedAt: changes.entries[0]?.version ?? 0 });
}

const notes = createKvClient<NoteTable>("/api/kv/notes");
await notes.set("any key at all", {
  title: "t",
  tags: [],
  priority: "high",
  pinnedUntil: null,
  status: { state: "archived", reason: "done" },
});

try {
  await site.setIfAbsent("banner", { active: true, message: "hi" });
} catch (error) {
  if (isKvError(error, "CONFLICT")) console.log(error.current_updated_at);
}
