// A table without soft delete has no restore, as in Rust.
import { createKvClient } from "kv-client";

import type { NoteTable } from "../../test/bindings/tables.js";

const notes = createKvClient<NoteTable>("/api/kv/notes");
await notes.restore("any key");
