// Behaviour shared by every page. The Content-Security-Policy allows no inline script or
// event attribute, so markup declares behaviour with data-* attributes and this file wires it.
(function () {
  "use strict";
  // <select data-autosubmit>: submit its form as soon as the choice changes
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el && el.hasAttribute && el.hasAttribute("data-autosubmit") && el.form) { el.form.submit(); }
  });
})();
