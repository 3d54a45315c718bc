// Progressive enhancement only: every page works without JavaScript.
(function () {
  "use strict";

  // Move focus to the error summary (or the first error) so keyboard and screen-reader
  // users land on what to fix.
  var summary = document.querySelector("[data-focus]");
  if (summary) {
    summary.focus();
  }

  // One submission per click: disable the button and say that the model is working.
  document.querySelectorAll("form[data-busy]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (button) {
        button.setAttribute("aria-busy", "true");
        button.disabled = true;
        button.textContent = form.getAttribute("data-busy") || "Calcul en cours…";
      }
    });
  });

  // "Edit this record before scoring": open the form pre-filled with the stored employee.
  document.querySelectorAll("[data-load-dossier]").forEach(function (button) {
    var input = button.form && button.form.querySelector("input[name=id_employee]");
    if (!input) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      if (!input.reportValidity()) {
        return;
      }
      var target = button.getAttribute("data-load-dossier");
      window.location.assign(target + "?dossier=" + encodeURIComponent(input.value));
    });
  });
})();
