// pbgm admin: optional improvements only; every page works without JavaScript.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Ask before a destructive action.
  document.querySelectorAll("button.danger").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.textContent.trim() + "?")) {
        event.preventDefault();
      }
    });
  });
});

document.addEventListener("DOMContentLoaded", function () {
  // After signing in again, a form kept over an expired session opens by itself
  // (it only shows the form filled in again; nothing is saved).
  var resume = document.querySelector("form[data-resume=auto]");
  if (resume) {
    resume.submit();
  }
});
