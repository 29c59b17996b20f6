// Case queue: poll the JSON every few seconds and redraw the rows.
// Text only (textContent): nothing from the server is ever parsed as HTML.
(function () {
  "use strict";
  var table = document.getElementById("queue");
  if (!table || !table.dataset.poll) { return; }
  var url = table.dataset.poll;
  var status = document.getElementById("queue-status");
  var INTERVAL = 3000;

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) { td.className = cls; }
    if (text instanceof Node) { td.appendChild(text); } else { td.textContent = text; }
    tr.appendChild(td);
    return td;
  }

  function timeLeft(r) {
    if (r.seconds_left === null || r.seconds_left === undefined) { return "—"; }
    if (r.seconds_left < 0) { return "overdue " + Math.floor(-r.seconds_left / 60) + " min"; }
    return Math.floor(r.seconds_left / 60) + " min " + (r.seconds_left % 60) + " s";
  }

  function draw(cases) {
    var body = document.createElement("tbody");
    cases.forEach(function (r) {
      var tr = document.createElement("tr");
      tr.dataset.case = String(r.id);
      var a = document.createElement("a");
      a.href = r.url;
      a.textContent = "#" + r.id;
      cell(tr, a);
      var badge = document.createElement("span");
      badge.className = "badge sev-" + r.severity;
      badge.textContent = r.severity;
      cell(tr, badge);
      cell(tr, String(r.category).replace(/_/g, " "));
      cell(tr, String(r.status).replace(/_/g, " ") + (r.handoff ? " · with agent" : ""));
      cell(tr, timeLeft(r), r.overdue ? "overdue" : "");
      if (r.alert_failed) { cell(tr, "alert failed", "failed"); } else { cell(tr, "step " + r.chase_step); }
      body.appendChild(tr);
    });
    if (!cases.length) {
      var tr = document.createElement("tr");
      tr.className = "empty";
      var td = cell(tr, "No cases.");
      td.colSpan = 6;
      body.appendChild(tr);
    }
    table.replaceChild(body, table.tBodies[0]);
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (resp) {
        if (resp.status === 401) { window.location.reload(); return null; }
        if (!resp.ok) { throw new Error("HTTP " + resp.status); }
        return resp.json();
      })
      .then(function (data) {
        if (!data) { return; }
        draw(data.cases);
        if (status) { status.textContent = "Updated " + new Date().toLocaleTimeString(); }
      })
      .catch(function () {
        if (status) { status.textContent = "Cannot reach the server; retrying."; }
      })
      .then(function () { window.setTimeout(poll, INTERVAL); });
  }
  window.setTimeout(poll, INTERVAL);
}());

// Case page: append new messages of the conversation as they arrive (text only).
(function () {
  "use strict";
  var list = document.getElementById("conversation");
  if (!list || !list.dataset.poll) { return; }
  var url = list.dataset.poll;
  var count = parseInt(list.dataset.count || "0", 10);
  var INTERVAL = 4000;

  function add(m) {
    var empty = list.querySelector("li.muted");
    if (empty) { list.removeChild(empty); }
    var li = document.createElement("li");
    li.className = m.dir === "in" ? "in" : "out";
    var meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = (m.dir === "in" ? "reporter" : "sent") + " · " + m.at + (m.meta ? " · " + m.meta : "");
    li.appendChild(meta);
    li.appendChild(document.createTextNode(m.body));
    list.appendChild(li);
  }

  function poll() {
    fetch(url + "?after=" + count, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (resp) {
        if (resp.status === 401) { window.location.reload(); return null; }
        return resp.ok ? resp.json() : null;
      })
      .then(function (data) {
        if (!data) { return; }
        if (data.count < count) { window.location.reload(); return; }
        data.items.forEach(add);
        count = data.count;
      })
      .catch(function () { /* try again on the next tick */ })
      .then(function () { window.setTimeout(poll, INTERVAL); });
  }
  window.setTimeout(poll, INTERVAL);
}());
