// Progressive enhancement only: every page works without this file.
// [data-poll="URL"] elements reload their content from URL every few seconds while the page
// is visible (the first orders of a new store, a long run's progress bar).
(function () {
  function poll(el) {
    var every = parseInt(el.getAttribute("data-every") || "2000", 10);
    setTimeout(function tick() {
      if (!document.body.contains(el)) return;
      if (document.hidden) { setTimeout(tick, every); return; }
      fetch(el.getAttribute("data-poll"), {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html !== null) el.innerHTML = html;
          if (el.getAttribute("data-poll-stop") !== "1" && !el.querySelector("[data-done]")) setTimeout(tick, every);
        })
        .catch(function () { setTimeout(tick, every * 2); });
    }, every);
  }
  document.querySelectorAll("[data-poll]").forEach(poll);
  // "Select all" for bulk actions on the orders list.
  document.querySelectorAll("input[data-select-all]").forEach(function (box) {
    box.addEventListener("change", function () {
      document.querySelectorAll("input[name=ids]").forEach(function (c) { c.checked = box.checked; });
    });
  });
  // Confirmations for destructive buttons.
  document.querySelectorAll("[data-confirm]").forEach(function (b) {
    b.addEventListener("click", function (e) { if (!confirm(b.getAttribute("data-confirm"))) e.preventDefault(); });
  });
})();
