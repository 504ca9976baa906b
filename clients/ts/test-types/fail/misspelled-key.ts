// A key the table does not declare is a compile error, as in Rust.
import { createKvClient } from "kv-client";

import type { SiteBannerTable } from "../../test/bindings/tables.js";

const site = createKvClient<SiteBannerTable>("/api/kv/site");
await site.get("banerr");
