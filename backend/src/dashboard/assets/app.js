// Apiary dashboard: the little JavaScript it needs. Every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Forms that change many devices ask once more.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // "Edit" on an inherited policy reveals the editor, prefilled with what is inherited.
  for (const button of document.querySelectorAll("button[data-reveal]")) {
    button.addEventListener("click", () => {
      const target = document.getElementById(button.dataset.reveal);
      if (target) { target.hidden = false; button.hidden = true; }
    });
  }
});
