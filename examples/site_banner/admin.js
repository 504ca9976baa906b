// The admin panel: save (with the version this page loaded, so a change
// made meanwhile by someone else is a conflict, not a silent overwrite),
// clear, restore.
(function () {
  "use strict";
  var form = document.getElementById("banner-form");
  var api = form.dataset.api;
  var message = document.getElementById("message");
  var active = document.getElementById("active");
  var status = document.getElementById("status");
  var stale = document.getElementById("stale");
  var conflict = document.getElementById("conflict");
  var conflictCurrent = document.getElementById("conflict-current");
  var loadCurrent = document.getElementById("load-current");

  // The updated_at of the banner this editor's text is based on; null when
  // there is no live banner.
  var base = form.dataset.updatedAt ? Number(form.dataset.updatedAt) : null;
  // The updated_at the live stream last reported.
  var live = base;
  var current = null;

  function say(text) {
    status.textContent = text;
  }

  function checkStale() {
    // The conflict box says it better once a save has failed.
    stale.hidden = live === base || !conflict.hidden;
  }

  function load(row) {
    message.value = row ? row.value.message : "";
    active.checked = row ? row.value.active : true;
    base = row ? row.updated_at : null;
    checkStale();
  }

  document.addEventListener("kv-banner", function (event) {
    live = event.detail ? event.detail.updated_at : null;
    checkStale();
  });

  async function call(method, url, body) {
    var headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    // A save is based on the version this editor loaded, or on there being
    // no banner at all: either way, a banner saved, restored or changed
    // meanwhile by someone else is a conflict, not a silent overwrite.
    if (method === "PUT") {
      if (base !== null) headers["If-Match"] = '"' + base + '"';
      else headers["If-None-Match"] = "*";
    }
    var response = await fetch(url, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    var data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    return { status: response.status, data: data };
  }

  function failure(result) {
    var data = result.data || {};
    if (data.code === "VALIDATION_FAILED" && data.fields) {
      return data.fields.map(function (f) { return (f.path ? f.path + ": " : "") + f.message; }).join("; ");
    }
    if (data.code === "FORBIDDEN" || data.code === "UNAUTHORIZED") return "You are not allowed to do that; sign in again.";
    if (data.code === "RATE_LIMITED") return "Too many changes; try again in " + Math.ceil((data.retry_after_ms || 1000) / 1000) + " s.";
    return data.message || "The server answered " + result.status + ".";
  }

  async function showConflict() {
    var result = await call("GET", api);
    current = result.status === 200 ? result.data : null;
    conflictCurrent.textContent = current ? current.value.message : "(no banner)";
    conflict.hidden = false;
    checkStale();
    say("");
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    conflict.hidden = true;
    say("Saving…");
    var result = await call("PUT", api, { value: { active: active.checked, message: message.value } });
    if (result.status === 200) {
      base = result.data.updated_at;
      checkStale();
      say("Saved.");
    } else if (result.status === 409) {
      await showConflict();
    } else {
      say(failure(result));
    }
  });

  document.getElementById("clear").addEventListener("click", async function () {
    conflict.hidden = true;
    var result = await call("DELETE", api);
    if (result.status === 200) {
      base = null;
      checkStale();
      say(result.data.deleted ? "Cleared. Restore brings it back." : "There was no banner to clear.");
    } else {
      say(failure(result));
    }
  });

  document.getElementById("restore").addEventListener("click", async function () {
    conflict.hidden = true;
    var result = await call("POST", api + "/restore");
    if (result.status === 200) {
      load(result.data);
      say("Restored.");
    } else if (result.status === 404) {
      say("There is no banner to restore.");
    } else {
      say(failure(result));
    }
  });

  loadCurrent.addEventListener("click", function () {
    conflict.hidden = true;
    load(current);
    say("Loaded the current text; edit it and save again.");
  });
})();
