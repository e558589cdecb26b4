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

  // New samples come every 10 s; a range of coarser periods is redrawn
  // for them once a period, not at each.
  var step = parseInt(body.dataset.step || "10", 10) * 1000, drawn = Date.now();
  var changes = new EventSource(base + "/events");
  changes.onopen = function () { body.dataset.live = "on"; };
  changes.onerror = function () { body.dataset.live = "off"; };
  changes.addEventListener("change", function (e) {
    if (e.data === "metrics" && Date.now() - drawn < step) return;
    drawn = Date.now();
    setTimeout(refresh, 100);
  });

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
  // The stream starts with the last lines again, on every (re)connect:
  // those up to the pane's last line are skipped, the rest added.
  var shown = parseInt(pane.dataset.lines || "0", 10);
  var last = function () {
    var rows = pane.querySelectorAll(".line");
    return rows.length ? rows[rows.length - 1].textContent : null;
  };
  var backlog = null, timer = 0;
  function flushBacklog() {
    var seen = last(), from = 0;
    if (seen !== null) {
      for (var i = backlog.length - 1; i >= 0; i--) {
        var d = backlog[i], line = d.slice(d.indexOf(" ") + 1);
        if (line === seen) { from = i + 1; break; }
      }
    }
    for (var j = from; j < backlog.length; j++) add(backlog[j]);
    backlog = null;
    timer = 0;
  }
  var logs = new EventSource(base + "/logs?lines=" + Math.max(shown, 100));
  logs.onopen = function () { pane.dataset.live = "on"; backlog = []; };
  logs.onmessage = function (e) {
    if (backlog === null) { add(e.data); return; }
    // The history comes in one burst: gather it, then match it.
    backlog.push(e.data);
    if (!timer) timer = setTimeout(flushBacklog, 200);
  };
  pane.scrollTop = pane.scrollHeight;
})();
