// Proof-of-concept report: follows a running report by polling its JSON and updating the
// step rows. Values are set with textContent only; the poll URL and the duration format come
// from data-* attributes of #poc-report (the CSP allows no inline script).
(function () {
  "use strict";
  var root = document.getElementById("poc-report");
  if (!root || root.getAttribute("data-running") !== "true") { return; }
  var url = root.getAttribute("data-poll-url");
  var seconds = root.getAttribute("data-seconds-format") || "%(s)s s";
  var badge = {passed: "status-normal", failed: "status-critical", running: "badge-info", pending: "status-nodata",
               skipped: "status-warning"};
  function text(el, value) { if (el) { el.textContent = value; } }
  function tick() {
    fetch(url, {headers: {"accept": "application/json"}, credentials: "same-origin"}).then(function (r) {
      if (!r.ok) { throw new Error(r.status); }
      return r.json();
    }).then(function (report) {
      report.steps.forEach(function (s) {
        var row = document.getElementById("step-" + s.key);
        if (!row) { return; }
        row.setAttribute("data-status", s.status);
        var st = row.querySelector('[data-field="status"]');
        st.className = "badge " + (badge[s.status] || "");
        text(st, s.status_text);
        text(row.querySelector('[data-field="time"]'),
             s.duration_ms === null ? "\u2014" : seconds.replace("%(s)s", (s.duration_ms / 1000).toFixed(1)));
        text(row.querySelector('[data-field="message"]'), s.message_text);
      });
      var status = document.getElementById("poc-status");
      status.className = "badge " + (badge[report.status] || "");
      status.setAttribute("data-poc-status", report.status);
      text(status, report.status_text);
      if (report.status !== "running") { window.location.reload(); return; }
      setTimeout(tick, 1500);
    }).catch(function () { setTimeout(tick, 5000); });
  }
  setTimeout(tick, 1500);
})();
