// Integrations pages: expand OPC-UA folders in place (lazy, through the browse API), select-all and
// a live count of picked tags on the mapping page, and a busy state on Test buttons.
// Plain JavaScript, no framework; every feature has a server-rendered fallback (folder links, forms).
(function () {
  "use strict";

  function text(el, key, fallback) {
    return (el && el.dataset && el.dataset[key]) || fallback;
  }

  function updateCount() {
    var n = document.querySelectorAll('input[name="sel"][form="assign-form"]:checked, input[name="folder"][form="assign-form"]:checked').length;
    document.querySelectorAll("[data-selected-count]").forEach(function (el) { el.textContent = String(n); });
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(c); } });
    return node;
  }

  function itemNode(tree, item) {
    var li = el("li", {"class": "ds-item" + (item.has_children ? " ds-folder" : ""), "data-node-id": item.id});
    if (item.has_children) {
      li.appendChild(el("button", {"type": "button", "class": "ds-toggle", "aria-expanded": "false",
                                   "data-expand": item.id, "text": "▸"}));
      var link = el("a", {"href": "?node=" + encodeURIComponent(item.id), "dir": "ltr", "text": item.display_name});
      li.appendChild(link);
      var pick = el("label", {"class": "ds-folder-pick"}, [
        el("input", {"type": "checkbox", "name": "folder", "value": item.id, "form": "assign-form"}),
        el("small", {"text": " " + text(tree, "textMapFolder", "map whole folder")})]);
      li.appendChild(pick);
      var kids = el("ul", {"class": "ds-children"});
      kids.hidden = true;
      li.appendChild(kids);
    }
    if (item.is_signal) {
      var meta = JSON.stringify({id: item.id, name: item.name, path: item.path, unit: item.eng_unit, type: item.data_type});
      li.appendChild(el("label", {"class": "ds-signal"}, [
        el("input", {"type": "checkbox", "name": "sel", "value": meta, "form": "assign-form", "data-testid": "tag-checkbox"}),
        el("span", {"dir": "ltr", "text": " " + item.display_name})]));
      if (item.eng_unit) { li.appendChild(el("span", {"class": "muted", "dir": "ltr", "text": " " + item.eng_unit})); }
      if (item.mapped_asset_code) {
        li.appendChild(el("span", {"class": "badge status-normal", "text": text(tree, "textMapped", "mapped to") + " " + item.mapped_asset_code}));
      }
    }
    return li;
  }

  function expand(tree, button) {
    var li = button.closest("li");
    var kids = li && li.querySelector(":scope > ul.ds-children");
    if (!kids) { return; }
    var open = button.getAttribute("aria-expanded") === "true";
    if (open) {
      kids.hidden = true;
      button.setAttribute("aria-expanded", "false");
      button.textContent = "▸";
      return;
    }
    button.setAttribute("aria-expanded", "true");
    button.textContent = "▾";
    kids.hidden = false;
    if (kids.dataset.loaded) { return; }
    kids.replaceChildren(el("li", {"class": "muted", "text": text(tree, "textLoading", "Loading…")}));
    var url = tree.dataset.browseUrl + "?node_id=" + encodeURIComponent(button.dataset.expand);
    fetch(url, {headers: {"accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
      .then(function (res) {
        if (!res.ok) { throw new Error((res.body.error && res.body.error.message) || "error"); }
        kids.dataset.loaded = "1";
        kids.replaceChildren();
        if (!res.body.items.length) { kids.appendChild(el("li", {"class": "muted", "text": text(tree, "textEmpty", "Empty folder")})); }
        res.body.items.forEach(function (item) { kids.appendChild(itemNode(tree, item)); });
      })
      .catch(function (err) {
        kids.replaceChildren(el("li", {"class": "field-error", "role": "alert",
                                       "text": text(tree, "textError", "Could not open this folder.") + " " + err.message}));
      });
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    var toggle = target.closest && target.closest("[data-expand]");
    if (toggle) {
      event.preventDefault();
      expand(toggle.closest("[data-browse-url]"), toggle);
      return;
    }
    if (target.closest && target.closest("[data-select-all]")) {
      document.querySelectorAll('input[name="sel"][form="assign-form"]').forEach(function (cb) {
        if (cb.offsetParent !== null) { cb.checked = true; }
      });
      updateCount();
    }
    if (target.closest && target.closest("[data-select-none]")) {
      document.querySelectorAll('input[form="assign-form"][type="checkbox"]').forEach(function (cb) { cb.checked = false; });
      updateCount();
    }
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches('input[form="assign-form"]')) { updateCount(); }
  });

  // Test buttons: the form posts normally (the result shows on the card after the redirect); say it is running.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("js-busy")) { return; }
    var button = form.querySelector("button[type=submit]");
    if (button && button.dataset.busy) {
      window.setTimeout(function () { button.disabled = true; button.textContent = button.dataset.busy; }, 0);
    }
  });

  document.addEventListener("DOMContentLoaded", updateCount);
})();
