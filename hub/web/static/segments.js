/* The segment editor's live audience count: as the form changes, post it to the count URL
   and show the answer in place, without a reload. Without this script the "Count" button
   does the same with one. Only the latest answer is shown. */
(function () {
  "use strict";
  var form = document.querySelector("form[data-count-url]");
  var out = document.getElementById("audience");
  if (!form || !out || !window.fetch || !window.URLSearchParams) { return; }
  var timer = null;
  var asked = 0;

  function count() {
    var mine = ++asked;
    out.setAttribute("aria-busy", "true");
    fetch(form.getAttribute("data-count-url"), {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin"
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.text();
    }).then(function (html) {
      if (mine === asked) { out.innerHTML = html; }
    }).catch(function () {
      if (mine === asked) { out.textContent = "Could not count just now: use the Count button."; }
    }).then(function () {
      if (mine === asked) { out.removeAttribute("aria-busy"); }
    });
  }

  function soon() {
    window.clearTimeout(timer);
    timer = window.setTimeout(count, 300);
  }

  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
  form.classList.add("live");
}());
