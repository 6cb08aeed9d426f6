// Apiary dashboard: the little JavaScript it needs. Every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Forms that change many devices ask once more.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // "Add ..." in a policy form: a copy of the list's blank-row template, numbered after the
  // last row. Clicks are delegated so rows added to a new file set work too.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-add-row]");
    if (!button) return;
    const list = button.closest(".records");
    const template = list && list.querySelector(":scope > template");
    const rows = list && list.querySelector(":scope > [data-rows], :scope > table > tbody[data-rows]");
    if (!template || !rows) return;
    const next = Number(button.dataset.next);
    rows.insertAdjacentHTML("beforeend",
      template.innerHTML.replaceAll(template.dataset.placeholder, String(next)));
    button.dataset.next = String(next + 1);
  });
});
