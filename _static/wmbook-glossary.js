/* wmbook: glossary definitions on hover, focus and tap, offline.
 * The definitions come from wmbook-glossary-data.js (window.WMBOOK_GLOSSARY, written at build
 * time from glossary.md by wmbook/book/sphinx_glossary.py), keyed by the glossary anchors.
 * Mouse: hover shows, leaving hides. Keyboard: focus shows, Escape hides. Touch: the first tap
 * on a term shows its definition, a second tap follows the link to the glossary. */
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }
  ready(function () {
    var data = window.WMBOOK_GLOSSARY || {};
    var tip = document.createElement("div");
    tip.className = "wmbook-gloss-tip";
    tip.setAttribute("role", "tooltip");
    tip.id = "wmbook-gloss-tip";
    tip.hidden = true;
    document.body.appendChild(tip);
    var shownFor = null;

    function record(a) {
      var href = a.getAttribute("href") || "";
      var hash = href.indexOf("#");
      if (hash < 0) return null;
      var page = href.slice(0, hash);
      if (page && !/(^|\/)glossary(\.html)?$/.test(page)) return null;
      return data[decodeURIComponent(href.slice(hash + 1))] || null;
    }
    function show(a) {
      var r = record(a);
      if (!r) return;
      tip.textContent = "";
      var head = document.createElement("div");
      head.className = "wmbook-gloss-terms";
      r.terms.forEach(function (t, i) {
        var s = document.createElement("span");
        s.textContent = t;
        if (/[\u3400-\u9fff]/.test(t)) s.lang = "zh";
        if (i) head.appendChild(document.createTextNode(" · "));
        head.appendChild(s);
      });
      var body = document.createElement("div");
      body.className = "wmbook-gloss-def";
      body.textContent = r.definition;
      tip.appendChild(head);
      tip.appendChild(body);
      tip.hidden = false;
      var box = a.getBoundingClientRect();
      var width = Math.min(360, document.documentElement.clientWidth - 16);
      tip.style.maxWidth = width + "px";
      var left = Math.max(8, Math.min(box.left + window.scrollX, window.scrollX + document.documentElement.clientWidth - width - 8));
      tip.style.left = left + "px";
      tip.style.top = (box.bottom + window.scrollY + 6) + "px";
      a.setAttribute("aria-describedby", tip.id);
      shownFor = a;
    }
    function hide() {
      if (shownFor) shownFor.removeAttribute("aria-describedby");
      tip.hidden = true;
      shownFor = null;
    }
    var links = Array.prototype.filter.call(document.querySelectorAll("a[href*='#']"), record);
    links.forEach(function (a) {
      a.classList.add("wmbook-gloss-link");
      a.addEventListener("mouseenter", function () { show(a); });
      a.addEventListener("mouseleave", hide);
      a.addEventListener("focus", function () { show(a); });
      a.addEventListener("blur", hide);
      a.addEventListener("touchend", function (e) {
        if (shownFor !== a) { e.preventDefault(); show(a); }
      });
    });
    document.addEventListener("keydown", function (e) { if (e.key === "Escape") hide(); });
    document.addEventListener("touchstart", function (e) {
      if (shownFor && !shownFor.contains(e.target) && !tip.contains(e.target)) hide();
    }, { passive: true });
    document.documentElement.setAttribute("data-wmbook-glossary-links", String(links.length));
  });
})();
