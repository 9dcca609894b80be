/* A console page that shows something still moving (a campaign sending, its report) keeps
   itself up to date in place: every few seconds the page is asked for again and its main
   content copied in, unless the reader paused it or is typing in a field on it. A button at
   the top pauses and resumes (WCAG 2.2.2). Without this script a <noscript> refresh reloads
   the whole page instead, as before. */
(function () {
  "use strict";
  var main = document.querySelector("main[data-refresh]");
  if (!main || !window.fetch || !window.DOMParser) { return; }
  var every = Math.max(2, Number(main.getAttribute("data-refresh")) || 10) * 1000;
  var paused = false;

  var bar = document.createElement("p");
  bar.className = "live";
  var button = document.createElement("button");
  button.type = "button";
  button.className = "secondary";
  var said = document.createElement("span");
  said.setAttribute("role", "status");
  bar.appendChild(button);
  bar.appendChild(document.createTextNode(" "));
  bar.appendChild(said);

  function show() {
    button.textContent = paused ? "Resume live updates" : "Pause live updates";
    button.setAttribute("aria-pressed", paused ? "true" : "false");
  }
  button.addEventListener("click", function () {
    paused = !paused;
    said.textContent = paused ? "Live updates paused." : "Live updates on.";
    show();
  });
  show();
  main.insertBefore(bar, main.firstChild);

  function busy() {
    var active = document.activeElement;
    return active && main.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
  }

  function poll() {
    if (paused || busy() || document.hidden) { window.setTimeout(poll, every); return; }
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        if (!fresh) { return; }
        Array.prototype.slice.call(main.childNodes).forEach(function (node) {
          if (node !== bar) { main.removeChild(node); }
        });
        Array.prototype.slice.call(fresh.childNodes).forEach(function (node) {
          main.appendChild(document.importNode(node, true));
        });
        if (!fresh.hasAttribute("data-refresh")) {  // it stopped moving: no more polls
          main.removeChild(bar);
          return;
        }
        window.setTimeout(poll, every);
      })
      .catch(function () { window.setTimeout(poll, every * 3); });
  }
  window.setTimeout(poll, every);
})();
