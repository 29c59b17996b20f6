// Campaign console: live audience size and live SMS segment counts.
// Text only (textContent); the CSRF token comes from <meta name="csrf-token">.
(function () {
  "use strict";
  var token = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": token, "Accept": "application/json"},
      body: JSON.stringify(body)
    }).then(function (r) { return r.json().then(function (j) { return {ok: r.ok, body: j}; }); });
  }

  function debounce(fn, ms) {
    var t = null;
    return function () { clearTimeout(t); t = setTimeout(fn, ms); };
  }

  var aud = document.getElementById("audience-form");
  if (aud) {
    var out = document.getElementById("audience-size");
    var split = function (v) { return v.split(",").map(function (s) { return s.trim(); }).filter(Boolean); };
    var checked = function (name) {
      return Array.prototype.map.call(aud.querySelectorAll('input[name="' + name + '"]:checked'), function (e) { return e.value; });
    };
    var refresh = debounce(function () {
      var filter = {languages: checked("languages"), states: checked("states"), channels: checked("channels"),
                    townships: split(aud.elements.townships.value), roles: split(aud.elements.roles.value)};
      post(aud.dataset.sizeUrl, {filter: filter}).then(function (r) {
        out.textContent = r.ok ? String(r.body.size) : (r.body.error || "?");
      });
    }, 250);
    aud.addEventListener("input", refresh);
    aud.addEventListener("change", refresh);
    refresh();
  }

  var form = document.getElementById("campaign-form");
  if (form) {
    Array.prototype.forEach.call(form.querySelectorAll("textarea.sms-text"), function (ta) {
      var out = document.getElementById(ta.id.replace("text-", "segments-"));
      var refresh = debounce(function () {
        if (!ta.value) { out.textContent = ""; return; }
        post(form.dataset.segmentsUrl, {body: ta.value}).then(function (r) {
          if (r.ok) {
            out.textContent = r.body.encoding + ", " + r.body.segments + " segment(s), " + r.body.remaining + " characters left";
          }
        });
      }, 250);
      ta.addEventListener("input", refresh);
      refresh();
    });
  }
}());
