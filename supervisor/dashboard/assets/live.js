// dyno's dashboard, live: the page stays as the server drew it, and
// this script only keeps it current. One event stream says what changed
// in the app; the page is then fetched again and each live section
// swapped for its new self. A second stream tails the logs into the
// pane. Without this script the page is the same, only still.
"use strict";
(function () {
  var body = document.body;
  var app = body.dataset.app;
  if (!app || !window.EventSource) return;
  var base = body.dataset.base + "/apps/" + encodeURIComponent(app);

  var pending = false, running = false, refreshed = 0;
  function refresh() {
    if (running) { pending = true; return; }
    running = true;
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.redirected || !r.ok) throw new Error("status " + r.status);
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelectorAll("section[data-live]");
        for (var i = 0; i < fresh.length; i++) {
          var old = document.getElementById(fresh[i].id);
          if (old && old.innerHTML !== fresh[i].innerHTML) {
            old.replaceWith(document.importNode(fresh[i], true));
          }
        }
        refreshed++;
        body.dataset.refreshed = String(refreshed);
      })
      .catch(function () {})
      .then(function () {
        running = false;
        if (pending) { pending = false; setTimeout(refresh, 250); }
      });
  }

  var changes = new EventSource(base + "/events");
  changes.onopen = function () { body.dataset.live = "on"; };
  changes.onerror = function () { body.dataset.live = "off"; };
  changes.addEventListener("change", function () { setTimeout(refresh, 100); });

  var pane = document.getElementById("logpane");
  if (!pane) return;
  var max = 1000;
  function add(data) {
    var sp = data.indexOf(" ");
    var color = parseInt(data.slice(0, sp), 10), line = data.slice(sp + 1);
    var row = document.createElement("span");
    row.className = "line";
    var cut = color >= 0 ? line.indexOf("]:") : -1;
    if (cut >= 0) {
      var head = document.createElement("span");
      head.className = "d" + color;
      head.textContent = line.slice(0, cut + 2);
      row.appendChild(head);
      row.appendChild(document.createTextNode(line.slice(cut + 2)));
    } else {
      row.textContent = line;
    }
    var atEnd = pane.scrollTop + pane.clientHeight >= pane.scrollHeight - 4;
    pane.appendChild(row);
    pane.appendChild(document.createTextNode("\n"));
    while (pane.childNodes.length > 2 * max) {
      pane.removeChild(pane.firstChild);
      pane.removeChild(pane.firstChild);
    }
    if (atEnd) pane.scrollTop = pane.scrollHeight;
  }
  var logs = new EventSource(base + "/logs");
  logs.onopen = function () { pane.dataset.live = "on"; };
  logs.onmessage = function (e) { add(e.data); };
  pane.scrollTop = pane.scrollHeight;
})();
