/* A console import's progress page, kept up to date in place: every second the page is asked
   for again and its bar and counts are copied in; once the import has ended the page is
   loaded once more, so its outcome is announced. Without this script a <noscript> refresh
   reloads the whole page every second instead. */
(function () {
  "use strict";
  var box = document.querySelector("[data-running]");
  if (!box || !window.fetch || !window.DOMParser) { return; }
  var parts = ["#import-progress", "#import-progress-label", "#import-counts"];

  function poll() {
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        if (!fresh.querySelector("[data-running]")) {
          window.location.reload();
          return;
        }
        parts.forEach(function (selector) {
          var now = document.querySelector(selector);
          var then = fresh.querySelector(selector);
          if (now && then) { now.replaceWith(document.importNode(then, true)); }
        });
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }

  window.setTimeout(poll, 1000);
})();
