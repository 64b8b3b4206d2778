// Keyboard shortcuts for the review pages. One listener on the document survives htmx's page
// swaps; every key looks up its target in the current page when pressed. Elements declare their
// key with data-key="p"; category boxes with data-category-key="1".."9".
(function () {
  "use strict";
  var busy = false;

  function typing(target) {
    if (!target) return false;
    var tag = target.tagName;
    return target.isContentEditable || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }

  function help(show) {
    var box = document.getElementById("help");
    if (!box) return;
    box.hidden = show === undefined ? !box.hidden : !show;
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-rows] [data-row]"));
  }

  function moveSelection(step) {
    var all = rows();
    if (!all.length) return false;
    var at = all.findIndex(function (r) { return r.classList.contains("selected"); });
    var next = Math.max(0, Math.min(all.length - 1, at < 0 ? 0 : at + step));
    all.forEach(function (r) { r.classList.remove("selected"); });
    all[next].classList.add("selected");
    all[next].scrollIntoView({ block: "nearest" });
    return true;
  }

  function press(key) {
    var el = document.querySelector('[data-key="' + key + '"]');
    if (!el) return false;
    if (el.dataset.action === "back") {
      history.back();
      return true;
    }
    if (el.tagName === "BUTTON" && el.type === "submit") busy = true; // no double verdicts
    el.click();
    return true;
  }

  document.addEventListener("keydown", function (e) {
    if (busy) { e.preventDefault(); return; }
    var t = e.target;
    if (t && t.tagName === "TEXTAREA" && (e.ctrlKey || e.metaKey) && e.key === "Enter") {
      e.preventDefault();
      press("f"); // a corrected response is a failing verdict
      return;
    }
    if (e.key === "Escape") {
      if (typing(t)) t.blur();
      help(false);
      return;
    }
    if (typing(t) || e.ctrlKey || e.metaKey || e.altKey) return;
    var key = e.key;
    if (key === "?") { e.preventDefault(); help(); return; }
    if (/^[1-9]$/.test(key)) {
      var box = document.querySelector('[data-category-key="' + key + '"]');
      if (box) { e.preventDefault(); box.checked = !box.checked; }
      return;
    }
    if (key === "e" || key === "n") {
      var field = document.querySelector(key === "e" ? "[data-editor]" : "[data-note]");
      if (field) {
        e.preventDefault();
        var details = field.closest("details");
        if (details) details.open = true;
        field.focus();
      }
      return;
    }
    if ((key === "j" || key === "k") && rows().length && !document.querySelector('[data-key="' + key + '"]')) {
      e.preventDefault();
      moveSelection(key === "j" ? 1 : -1);
      return;
    }
    if ((key === "o" || key === "Enter") && rows().some(function (r) { return r.classList.contains("selected"); })) {
      var row = document.querySelector("[data-row].selected");
      var link = row && row.querySelector("a");
      if (link) { e.preventDefault(); link.click(); return; }
    }
    if (press(key)) e.preventDefault();
  });

  document.addEventListener("click", function (e) {
    var el = e.target && e.target.closest && e.target.closest('[data-key="?"]');
    if (el) help();
  });

  // A new page (or an error page) arrived: keys work again.
  document.addEventListener("htmx:afterSettle", function () { busy = false; help(false); });
  document.addEventListener("htmx:responseError", function () { busy = false; });
  document.addEventListener("htmx:sendError", function () { busy = false; });
  window.addEventListener("pageshow", function () { busy = false; });
})();
