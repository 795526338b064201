// Live refresh for the dashboard. Without JavaScript, pages carry a <noscript> meta refresh.
// Every few seconds the current page is fetched again (same origin, same session cookie) and
// its <main> replaces ours, unless the reader is typing in a form or the tab is hidden.
(function () {
  "use strict";
  var seconds = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (!seconds || !window.fetch || !window.DOMParser) { return; }
  var busy = false;
  function typing() {
    var el = document.activeElement;
    return el && (el.tagName === "INPUT" || el.tagName === "SELECT" || el.tagName === "TEXTAREA");
  }
  function refresh() {
    if (busy || document.hidden || typing()) { return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Refresh": "1" } })
      .then(function (response) {
        if (response.redirected || !response.ok) { throw new Error("stale session"); }
        return response.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("main");
        var main = document.getElementById("main");
        if (fresh && main) { main.innerHTML = fresh.innerHTML; }
        var stamp = document.getElementById("updated");
        if (stamp) { stamp.textContent = "Updated " + new Date().toLocaleTimeString(); }
      })
      .catch(function () { window.location.reload(); })
      .then(function () { busy = false; });
  }
  window.setInterval(refresh, seconds * 1000);
}());
