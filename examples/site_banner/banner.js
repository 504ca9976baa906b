// @ts-check
// Keeps the banner at the top of every page current: kv's client follows
// the banner row over the event stream (its state first, then one per
// change) and reconnects by itself. No reload.
import { createKvClient } from "./kv/index.js";

/** @type {import("./kv/index.js").KvClient<import("./SiteBanner.ts").SiteBannerTable>} */
const site = createKvClient("/api/kv/site");

const banner = /** @type {HTMLElement} */ (document.getElementById("site-banner"));
const text = /** @type {HTMLElement} */ (banner.querySelector(".banner-text"));
const state = /** @type {HTMLElement} */ (document.getElementById("live-state"));

site.watch(
  "banner",
  ({ row }) => {
    const message = row && row.value.active ? row.value.message : "";
    text.textContent = message;
    banner.hidden = message === "";
    // The admin panel follows the live version through this event.
    document.dispatchEvent(new CustomEvent("kv-banner", { detail: row }));
  },
  {
    onStatus(status) {
      state.textContent = status === "live" ? "live" : "reconnecting…";
      document.body.dataset.live = String(status === "live");
    },
  },
);
