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

  // Cross-field rules (experience vs age, tenure vs experience...) shown as the user types.
  // The rules come from the server (data-coherence), which checks them again on submit.
  document.querySelectorAll("form[data-coherence]").forEach(function (form) {
    var rules;
    try {
      rules = JSON.parse(form.getAttribute("data-coherence"));
    } catch (e) {
      return;
    }
    function number(name) {
      var input = form.elements[name];
      if (!input || input.value.trim() === "") {
        return null;
      }
      var value = Number(input.value.replace(",", "."));
      return isNaN(value) ? null : value;
    }
    function check() {
      var problems = {};
      rules.forEach(function (rule) {
        var small = number(rule.champ);
        var big = number(rule.borne);
        if (small === null || big === null || problems[rule.champ]) {
          return;
        }
        var limit = big + rule.ecart;
        if (small > limit) {
          problems[rule.champ] = "Incohérent : " + small + " " + rule.texte + " (" + limit + ").";
        }
      });
      rules.forEach(function (rule) {
        var input = form.elements[rule.champ];
        var live = document.getElementById("x-" + rule.champ);
        if (!input || !live) {
          return;
        }
        var problem = problems[rule.champ] || "";
        if (live.textContent !== problem) {
          live.textContent = problem;
        }
        input.setCustomValidity(problem);
        var ids = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (id) {
          return id && id !== live.id;
        });
        if (problem) {
          input.setAttribute("aria-invalid", "true");
          ids.push(live.id);
        } else if (!input.closest(".invalid")) {
          input.removeAttribute("aria-invalid");
        }
        if (ids.length) {
          input.setAttribute("aria-describedby", ids.join(" "));
        } else {
          input.removeAttribute("aria-describedby");
        }
      });
    }
    form.addEventListener("input", check);
    check();
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
