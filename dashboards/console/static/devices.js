// Devices page: filter the table as you type.
"use strict";
(function () {
  const input = document.getElementById("filter");
  const rows = Array.from(document.querySelectorAll("#devices tbody tr"));
  input.addEventListener("input", function () {
    const q = input.value.trim().toLowerCase();
    rows.forEach(function (r) { r.hidden = q !== "" && !r.textContent.toLowerCase().includes(q); });
  });
})();
