// A value of the wrong shape is a compile error.
import { createKvClient } from "kv-client";

import type { SiteBannerTable } from "../../test/bindings/tables.js";

const site = createKvClient<SiteBannerTable>("/api/kv/site");
await site.set("banner", { active: "yes", message: "Back at 5pm" });
