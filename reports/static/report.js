// mlmon reports: the only script a report or the index runs (pinned by the page's CSP hash).
// It reads values with textContent / dataset only, never writes HTML.
(function () {
  "use strict";

  // Report: let the Evidently iframe grow to its content's height (the page posts it, see render.py).
  var frame = document.getElementById("evidently-frame");
  if (frame) {
    window.addEventListener("message", function (e) {
      if (e.source !== frame.contentWindow || !e.data || typeof e.data.mlmonEvidentlyHeight !== "number") return;
      var h = Math.min(Math.max(Math.ceil(e.data.mlmonEvidentlyHeight) + 4, 200), 100000);
      frame.style.height = h + "px";
      frame.setAttribute("data-loaded", "true");
    });
  }

  // Index: filter the models and their windows by model, status and free text.
  var bar = document.getElementById("filters");
  if (!bar) return;
  bar.classList.remove("hidden");
  var model = document.getElementById("f-model");
  var text = document.getElementById("f-text");
  var boxes = Array.prototype.slice.call(bar.querySelectorAll("input[data-status]"));
  var groups = Array.prototype.slice.call(document.querySelectorAll("section[data-model]"));
  var shown = document.getElementById("f-shown");

  function apply() {
    var wanted = {};
    boxes.forEach(function (b) { wanted[b.getAttribute("data-status")] = b.checked; });
    var q = text.value.trim().toLowerCase();
    var total = 0;
    groups.forEach(function (g) {
      var modelOk = !model.value || g.getAttribute("data-model") === model.value;
      var visible = 0;
      g.querySelectorAll("tbody tr[data-status]").forEach(function (tr) {
        var ok = modelOk && wanted[tr.getAttribute("data-status")] &&
          (!q || tr.textContent.toLowerCase().indexOf(q) >= 0 || g.getAttribute("data-model").toLowerCase().indexOf(q) >= 0);
        tr.classList.toggle("hidden", !ok);
        if (ok) visible++;
      });
      g.classList.toggle("hidden", visible === 0);
      total += visible;
    });
    if (shown) shown.textContent = String(total);
  }
  [model, text].forEach(function (el) { el.addEventListener("input", apply); });
  boxes.forEach(function (b) { b.addEventListener("change", apply); });
  var fromHash = decodeURIComponent((location.hash || "").replace(/^#model=/, ""));
  if (fromHash && location.hash.indexOf("#model=") === 0) {
    Array.prototype.forEach.call(model.options, function (o) { if (o.value === fromHash) model.value = fromHash; });
  }
  apply();
})();
