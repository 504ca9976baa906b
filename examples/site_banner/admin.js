// @ts-check
// The admin panel: save over the version this page loaded (a change made
// meanwhile by someone else is a conflict, not a silent overwrite),
// clear, restore; the banner's recent changes (who, when, what), each with
// a button that reverts to it, over the same version.
import { createKvClient, isKvError } from "./kv/index.js";

/** @typedef {import("./SiteBanner.ts").SiteBannerRow} SiteBannerRow */
/** @typedef {import("./kv/index.js").KvHistoryEntry<"banner", import("./SiteBanner.ts").SiteBanner>} Entry */

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const form = /** @type {HTMLFormElement} */ ($("banner-form"));
const message = /** @type {HTMLTextAreaElement} */ ($("message"));
const active = /** @type {HTMLInputElement} */ ($("active"));
const [status, stale, conflict] = [$("status"), $("stale"), $("conflict")];
const [history, historyNote] = [$("history"), $("history-note")];

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
  showHistory();
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

/** @param {SiteBannerRow | null} row */
async function showConflict(row) {
  current = row;
  $("conflict-current").textContent = current ? current.value.message : "(no banner)";
  conflict.hidden = false;
  checkStale();
  say("");
}

const what = {
  set: (/** @type {Entry} */ e) => `“${e.value.message}”${e.value.active ? "" : " (hidden)"}`,
  rm: () => "cleared",
  restore: (/** @type {Entry} */ e) => `restored “${e.value.message}”`,
  purge: () => "purged",
};
const when = (/** @type {number} */ at) => new Date(at).toISOString().slice(0, 16).replace("T", " ") + " UTC";

// The newest changes, newest first; reloaded when the banner changes (the
// last load wins).
let shown = /** @type {number | null | undefined} */ (undefined);
let loads = 0;
function showHistory() {
  if (shown === live) return;
  shown = live;
  const mine = ++loads;
  site
    .history("banner", { limit: 20 })
    .then((page) => mine === loads && render(page.entries))
    .catch((error) => void (historyNote.textContent = failure(error)));
}

/** @param {Entry[]} entries */
function render(entries) {
  history.replaceChildren(
    ...entries.map((entry, i) => {
      const item = document.createElement("li");
      item.dataset.version = String(entry.version);
      const text = document.createElement("span");
      text.className = "what";
      text.textContent = what[entry.op](entry);
      const meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = `${entry.updated_by ?? "anonymous"} · ${when(entry.at)}`;
      item.append(text, meta);
      // Every change but the one the banner is at now can be gone back to.
      if (i > 0 || entry.version !== live) {
        const revert = document.createElement("button");
        revert.type = "button";
        revert.className = "revert";
        revert.textContent = "Revert to this";
        revert.addEventListener("click", () => revertTo(entry));
        item.append(revert);
      }
      return item;
    }),
  );
  historyNote.textContent = entries.length ? "" : "No changes yet.";
}

/** Writes `entry`'s value back, over the version this editor is based on. @param {Entry} entry */
async function revertTo(entry) {
  conflict.hidden = true;
  say("Reverting…");
  try {
    load(await site.revert("banner", entry.version, base === null ? {} : { expectedUpdatedAt: base }));
    say(`Reverted to the banner of ${when(entry.at)}.`);
  } catch (error) {
    if (isKvError(error, "CONFLICT")) return showConflict(await site.get("banner").catch(() => null));
    say(isKvError(error, "NOT_FOUND") ? "That change is no longer kept." : failure(error));
  }
}

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
    await showConflict(await site.get("banner").catch(() => null));
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

showHistory();
