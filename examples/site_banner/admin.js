// @ts-check
// The admin panel: save over the version this page loaded (a change made
// meanwhile by someone else is a conflict, not a silent overwrite),
// clear, restore.
import { createKvClient, isKvError } from "./kv/index.js";

/** @typedef {import("./SiteBanner.ts").SiteBannerRow} SiteBannerRow */

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const form = /** @type {HTMLFormElement} */ ($("banner-form"));
const message = /** @type {HTMLTextAreaElement} */ ($("message"));
const active = /** @type {HTMLInputElement} */ ($("active"));
const [status, stale, conflict] = [$("status"), $("stale"), $("conflict")];

/** @type {import("./kv/index.js").KvClient<import("./SiteBanner.ts").SiteBannerTable>} */
const site = createKvClient(form.dataset.api ?? "/api/kv/site");

// The updated_at of the banner this editor's text is based on, null when
// there was no live banner; the one the live stream last reported; the
// banner found on a conflict.
/** @type {number | null} */
let base = form.dataset.updatedAt ? Number(form.dataset.updatedAt) : null;
let live = base;
/** @type {SiteBannerRow | null} */
let current = null;

const say = (/** @type {string} */ text) => void (status.textContent = text);
// The conflict box says it better once a save has failed.
const checkStale = () => void (stale.hidden = live === base || !conflict.hidden);

/** @param {SiteBannerRow | null} row */
function load(row) {
  message.value = row ? row.value.message : "";
  active.checked = row ? row.value.active : true;
  base = row ? row.updated_at : null;
  checkStale();
}

document.addEventListener("kv-banner", (event) => {
  const row = /** @type {CustomEvent<SiteBannerRow | null>} */ (event).detail;
  live = row ? row.updated_at : null;
  checkStale();
});

/** @param {unknown} error */
function failure(error) {
  if (!isKvError(error)) return `Something went wrong: ${error}`;
  switch (error.code) {
    case "VALIDATION_FAILED":
      return (error.fields ?? []).map((f) => (f.path ? `${f.path}: ` : "") + f.message).join("; ");
    case "FORBIDDEN":
    case "UNAUTHORIZED":
      return "You are not allowed to do that; sign in again.";
    case "RATE_LIMITED":
      return `Too many changes; try again in ${Math.ceil((error.retry_after_ms ?? 1000) / 1000)} s.`;
    default:
      return error.message;
  }
}

/** @param {() => Promise<void>} action */
const onClick = (/** @type {string} */ id, action) =>
  $(id).addEventListener("click", () => {
    conflict.hidden = true;
    action().catch((error) => say(failure(error)));
  });

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  conflict.hidden = true;
  say("Saving…");
  const value = { active: active.checked, message: message.value };
  try {
    // Based on the version this editor loaded, or on there being no
    // banner at all: a banner saved, restored or changed meanwhile is a
    // conflict either way.
    const row = base !== null ? await site.setExpecting("banner", value, base) : await site.setIfAbsent("banner", value);
    base = row.updated_at;
    checkStale();
    say("Saved.");
  } catch (error) {
    if (!isKvError(error, "CONFLICT")) return say(failure(error));
    current = await site.get("banner").catch(() => null);
    $("conflict-current").textContent = current ? current.value.message : "(no banner)";
    conflict.hidden = false;
    checkStale();
    say("");
  }
});

onClick("clear", async () => {
  const deleted = await site.rm("banner");
  base = null;
  checkStale();
  say(deleted ? "Cleared. Restore brings it back." : "There was no banner to clear.");
});

onClick("restore", async () => {
  try {
    load(await site.restore("banner"));
    say("Restored.");
  } catch (error) {
    say(isKvError(error, "NOT_FOUND") ? "There is no banner to restore." : failure(error));
  }
});

onClick("load-current", async () => {
  load(current);
  say("Loaded the current text; edit it and save again.");
});
