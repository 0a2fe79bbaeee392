// Bastion: small progressive enhancements; every page works without them.
"use strict";

// The solve-run page: poll the run's JSON while it is queued or running, then reload.
function pollRun(el) {
  const url = el.dataset.pollUrl;
  const show = (name, value) => {
    const cell = el.querySelector("[data-field=" + name + "]");
    if (cell) cell.textContent = value === null || value === undefined ? "–" : String(value);
  };
  const tick = () => {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((r) => r.json())
      .then((run) => {
        for (const key of ["status", "objective", "bound", "elapsed", "coverage_percent"]) show(key, run[key]);
        const bar = el.querySelector("progress");
        if (bar) bar.value = run.percent || 0;
        if (run.active) setTimeout(tick, 1000);
        else if (el.dataset.wasActive === "1") window.location.reload();
      })
      .catch(() => setTimeout(tick, 3000));
  };
  tick();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-poll-url]").forEach(pollRun);
  // Not an inline onfocus: the CSP (default-src 'self') blocks inline handlers.
  document.querySelectorAll("input[data-select-on-focus]").forEach((input) => {
    input.addEventListener("focus", () => input.select());
  });
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
});
