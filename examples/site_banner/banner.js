// Keeps the banner at the top of every page current: the server sends the
// banner row (or null) first, then again after every change. No reload.
(function () {
  "use strict";
  var banner = document.getElementById("site-banner");
  var text = banner.querySelector(".banner-text");
  var state = document.getElementById("live-state");

  function show(row) {
    var visible = !!(row && row.value && row.value.active && row.value.message);
    text.textContent = visible ? row.value.message : "";
    banner.hidden = !visible;
    document.dispatchEvent(new CustomEvent("kv-banner", { detail: row }));
  }

  function connect() {
    var source = new EventSource("/api/kv/site/banner/events");
    source.onopen = function () {
      state.textContent = "live";
      document.body.dataset.live = "true";
    };
    source.onerror = function () {
      state.textContent = "reconnecting…";
      document.body.dataset.live = "false";
      // EventSource reconnects by itself after a dropped connection (the
      // first event after that is the current state again), but gives up
      // on an error answer, such as 429 TOO_MANY_STREAMS: try again later.
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, 5000);
      }
    };
    source.onmessage = function (event) {
      try {
        show(JSON.parse(event.data));
      } catch (e) {
        // A malformed event changes nothing.
      }
    };
  }

  connect();
})();
