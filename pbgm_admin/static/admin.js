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
