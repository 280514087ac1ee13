/* Live updates of the Digital Twin pages.
 *
 * The page carries data-twin-stream (the SSE address) and data-server-now. EventSource
 * reconnects by itself and sends Last-Event-ID, so the server resumes where the page left
 * off. Cards are patched in place by asset id; only text and data attributes change (never
 * markup), so nothing in an event can inject HTML. A timer marks data as stale when its
 * newest sample is older than the expected interval allows, even if no event arrives.
 */
(function () {
  "use strict";
  var root = document.querySelector("[data-twin-stream]");
  var source = root && root.getAttribute("data-twin-stream");
  if (!source || !window.EventSource) {
    return;
  }
  var texts = JSON.parse(document.getElementById("twin-texts").textContent);
  var offset = Number(root.getAttribute("data-server-now")) / 1000 - Date.now() / 1000;
  var stateEl = document.querySelector("[data-live-state]");

  function serverNow() { return Date.now() / 1000 + offset; }

  function each(selector, scope, fn) {
    Array.prototype.forEach.call((scope || document).querySelectorAll(selector), fn);
  }

  function setText(scope, name, value) {
    each('[data-field="' + name + '"]', scope, function (el) { el.textContent = value; });
  }

  function setLive(state) {
    if (!stateEl) { return; }
    stateEl.setAttribute("data-live-state", state);
    each("[data-live-text]", stateEl, function (el) { el.textContent = texts.live[state] || ""; });
  }

  // Times in the page's language and time zone (the site's or the tenant's), Western digits as on the server.
  var html = document.documentElement;
  var timeFormat = null;
  try {
    timeFormat = new Intl.DateTimeFormat((html.getAttribute("lang") || "ar") + "-u-nu-latn", {
      timeZone: document.body.getAttribute("data-zone") || "UTC", year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"
    });
  } catch (e) { timeFormat = null; }

  function localTime(epoch) {
    var d = new Date(epoch * 1000);
    return timeFormat ? timeFormat.format(d) : d.toISOString();
  }

  function showData(el, state) {
    el.setAttribute("data-data", state);
    setText(el, "data", state === "none" ? "" : (texts.data[state] || ""));
  }

  function applyCard(card) {
    each('[data-asset-id="' + card.id + '"]', document, function (el) {
      el.setAttribute("data-status", card.status);
      el.setAttribute("data-risk", card.risk);
      el.setAttribute("data-fresh-until", card.fresh_until == null ? "" : card.fresh_until);
      el.setAttribute("data-all-stale-at", card.all_stale_at == null ? "" : card.all_stale_at);
      setText(el, "score", card.score == null ? "—" : String(card.score));
      setText(el, "prob", card.prob_pct == null ? "—" : String(card.prob_pct));
      each('[data-field="prob-sign"]', el, function (sign) { sign.hidden = card.prob_pct == null; });
      each('[data-field="status"]', el, function (badge) {
        badge.className = badge.className.replace(/\bstatus-[a-z]+\b/, "status-" + card.status);
        badge.textContent = texts.status[card.status] || card.status;
      });
      showData(el, card.data);
      el.classList.remove("just-updated");
      void el.offsetWidth;  // restart the highlight animation
      el.classList.add("just-updated");
    });
    card.values.forEach(function (v) {
      each('[data-asset-id="' + card.id + '"] [data-signal-id="' + v.id + '"], [data-twin-stream] [data-signal-id="' + v.id + '"]',
        document, function (row) {
          row.setAttribute("data-state", v.state);
          setText(row, "value", v.text);
          if (v.t != null) { setText(row, "time", localTime(v.t)); }
          each('[data-field="pos"]', row, function (pointer) {
            if (v.pos == null) { pointer.hidden = true; return; }
            pointer.hidden = false;
            // positions are data-at="0…100" (optria.css): the CSP allows no inline style
            pointer.setAttribute("data-at", String(Math.round(Math.min(100, Math.max(0, v.pos)))));
          });
        });
    });
  }

  function applyCounts(counts) {
    var strip = document.querySelector("[data-site-filter]");
    if (!strip) { return; }
    var site = strip.getAttribute("data-site-filter");
    var totals = {};
    Object.keys(counts).forEach(function (siteId) {
      if (site && site !== siteId) { return; }
      Object.keys(counts[siteId]).forEach(function (status) {
        totals[status] = (totals[status] || 0) + counts[siteId][status];
      });
    });
    each("[data-count-status]", strip, function (el) {
      el.textContent = String(totals[el.getAttribute("data-count-status")] || 0);
    });
  }

  function markStale() {
    var now = serverNow();
    each("[data-asset-id][data-data]", document, function (el) {
      var state = el.getAttribute("data-data");
      if (state === "unmapped" || state === "waiting" || state === "all") { return; }
      var all = parseFloat(el.getAttribute("data-all-stale-at"));
      var some = parseFloat(el.getAttribute("data-fresh-until"));
      if (!isNaN(all) && now >= all) {
        showData(el, "all");
      } else if (state === "none" && !isNaN(some) && now >= some) {
        showData(el, "some");
      }
    });
  }

  var events = new EventSource(source);
  events.addEventListener("open", function () { setLive("live"); });
  events.addEventListener("error", function () {
    setLive(events.readyState === EventSource.CLOSED ? "ended" : "reconnecting");
  });
  events.addEventListener("cards", function (e) {
    var message = JSON.parse(e.data);
    if (typeof message.now === "number") { offset = message.now - Date.now() / 1000; }
    message.cards.forEach(applyCard);
    if (message.counts) { applyCounts(message.counts); }
    markStale();
    setLive("live");
  });
  events.addEventListener("reload", function () { events.close(); window.location.reload(); });
  events.addEventListener("ended", function () { events.close(); setLive("ended"); });
  window.addEventListener("pagehide", function () { events.close(); });
  markStale();
  window.setInterval(markStale, 1000);
})();
