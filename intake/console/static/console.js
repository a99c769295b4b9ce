// The mapping editor's line numbers, and jumping to the line a problem names.
(function () {
  "use strict";
  function gutter() {
    var body = document.getElementById("body"), list = document.getElementById("gutter");
    if (!body || !list) return;
    var count = body.value.split("\n").length, bad = {};
    document.querySelectorAll("#problems [data-line]").forEach(function (b) { bad[b.dataset.line] = true; });
    var html = "";
    for (var i = 1; i <= count; i++) html += "<li" + (bad[i] ? ' class="bad"' : "") + ">" + i + "</li>";
    list.innerHTML = html;
    list.scrollTop = body.scrollTop;
  }
  function goToLine(n) {
    var body = document.getElementById("body");
    var lines = body.value.split("\n"), start = 0;
    for (var i = 0; i < n - 1 && i < lines.length; i++) start += lines[i].length + 1;
    body.focus();
    body.setSelectionRange(start, start + (lines[n - 1] || "").length);
    body.scrollTop = Math.max(0, (n - 3) * parseFloat(getComputedStyle(body).lineHeight));
  }
  document.addEventListener("DOMContentLoaded", function () {
    var body = document.getElementById("body");
    if (!body) return;
    body.addEventListener("input", gutter);
    body.addEventListener("scroll", function () { document.getElementById("gutter").scrollTop = body.scrollTop; });
    document.body.addEventListener("htmx:afterSwap", gutter);
    document.addEventListener("click", function (e) {
      var t = e.target.closest && e.target.closest("[data-line]");
      if (t) goToLine(parseInt(t.dataset.line, 10));
    });
    gutter();
  });
})();
