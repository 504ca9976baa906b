// A table without history has no history or revert, as in Rust.
import { createKvClient } from "kv-client";

import type { NoteTable } from "../../test/bindings/tables.js";

const notes = createKvClient<NoteTable>("/api/kv/notes");
await notes.history("any key");
await notes.revert("any key", 1);
