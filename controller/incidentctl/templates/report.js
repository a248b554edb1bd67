// The timeline's filters: by run, changed only, failed only, skipped hidden. No network, no library.
(function () {
  "use strict";
  var table = document.getElementById("timeline-table");
  if (!table) { return; }
  var run = document.getElementById("f-run");
  var changed = document.getElementById("f-changed");
  var failed = document.getElementById("f-failed");
  var skipped = document.getElementById("f-skipped");
  var count = document.getElementById("f-count");
  var rows = table.tBodies[0].rows;

  function apply() {
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var d = rows[i].dataset;
      // "controller" picks the controller's own steps; a run picks its tasks and the steps about it
      var visible = (!run.value || (run.value === "controller" ? d.source === "controller" : d.run === run.value)) &&
        (!changed.checked || d.changed === "1") &&
        (!failed.checked || d.failed === "1") &&
        (!skipped.checked || d.skipped !== "1");
      rows[i].hidden = !visible;
      if (visible) { shown++; }
    }
    count.textContent = shown + " of " + rows.length + " entries";
  }

  [run, changed, failed, skipped].forEach(function (el) { el.addEventListener("change", apply); });
  apply();
})();
