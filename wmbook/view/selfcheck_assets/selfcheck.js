/* wmbook self-check questions: feedback per option, a review queue kept in this browser only.
 * Called once per fragment as wmbSelfCheck(uid, data); data = {page, title, questions: [{id,
 * prompt, options: [{text, correct, why}]}]}. Answers are stored in localStorage under
 * "wmbook-selfcheck" as {page: {question id: "right" | "wrong"}} (the first answer of the last
 * visit); a question answered wrong comes first, marked, the next time the page opens. Nothing
 * leaves the browser. */
(function (uid, data) {
  "use strict";
  var root = document.getElementById(uid);
  if (!root || root.getAttribute("data-wmb-ready")) return;
  root.setAttribute("data-wmb-ready", "1");
  var KEY = "wmbook-selfcheck";
  function load() {
    try { return JSON.parse(window.localStorage.getItem(KEY) || "{}") || {}; } catch (e) { return {}; }
  }
  function save(all) {
    try { window.localStorage.setItem(KEY, JSON.stringify(all)); } catch (e) { /* storage off: no review queue */ }
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) inline(e, text);
    return e;
  }
  function inline(e, text) { /* `code` spans become <code>; everything else is text */
    String(text).split("`").forEach(function (part, i) {
      if (i % 2) { var c = document.createElement("code"); c.textContent = part; e.appendChild(c); }
      else if (part) e.appendChild(document.createTextNode(part));
    });
  }
  function typeset(node) { /* math in \\( \\) where the page has MathJax 3 (the built book) */
    if (window.MathJax && window.MathJax.typesetPromise) window.MathJax.typesetPromise([node]).catch(function () {});
  }
  var stored = load()[data.page] || {};
  var review = data.questions.filter(function (q) { return stored[q.id] === "wrong"; });
  var order = review.concat(data.questions.filter(function (q) { return stored[q.id] !== "wrong"; }));
  var answered = {};

  var body = root.querySelector(".wmb-sc-body");
  body.textContent = "";
  var status = root.querySelector(".wmb-sc-status");
  function update() {
    var n = Object.keys(answered).length;
    var right = Object.keys(answered).filter(function (k) { return answered[k] === "right"; }).length;
    var text = n ? right + " of " + n + " right at the first try" : data.questions.length + " questions";
    if (review.length && n === 0) text += " · " + review.length + " you missed last time come first (\u21bb)";
    status.textContent = text;
    root.setAttribute("data-wmb-answered", String(n));
    root.setAttribute("data-wmb-right", String(right));
  }
  order.forEach(function (q, qi) {
    var box = el("div", "wmb-sc-q" + (stored[q.id] === "wrong" ? " wmb-sc-review" : ""));
    box.setAttribute("data-qid", q.id);
    var prompt = el("div", "wmb-sc-prompt", (qi + 1) + ". " + q.prompt);
    box.appendChild(prompt);
    var opts = el("div", "wmb-sc-opts");
    opts.setAttribute("role", "group");
    var feedback = el("div", "wmb-sc-feedback");
    feedback.hidden = true;
    feedback.setAttribute("aria-live", "polite");
    q.options.forEach(function (o, oi) {
      var b = el("button", "wmb-sc-opt", String.fromCharCode(97 + oi) + ") " + o.text);
      b.type = "button";
      b.setAttribute("data-correct", o.correct ? "1" : "0");
      b.addEventListener("click", function () {
        Array.prototype.forEach.call(opts.children, function (x) { x.classList.remove("wmb-sc-right", "wmb-sc-wrong"); });
        b.classList.add(o.correct ? "wmb-sc-right" : "wmb-sc-wrong");
        feedback.textContent = "";
        feedback.className = "wmb-sc-feedback " + (o.correct ? "wmb-sc-right" : "wmb-sc-wrong");
        inline(feedback, (o.correct ? "Right. " : "Not quite. ") + o.why);
        feedback.hidden = false;
        typeset(feedback);
        if (!(q.id in answered)) {
          answered[q.id] = o.correct ? "right" : "wrong";
          var all = load();
          all[data.page] = all[data.page] || {};
          all[data.page][q.id] = answered[q.id];
          save(all);
          update();
        }
      });
      opts.appendChild(b);
    });
    box.appendChild(opts);
    box.appendChild(feedback);
    body.appendChild(box);
  });
  var foot = el("div", "wmb-sc-foot");
  var clear = el("button", "wmb-sc-clear", "Forget my answers on this page");
  clear.type = "button";
  clear.addEventListener("click", function () {
    var all = load();
    delete all[data.page];
    save(all);
    clear.textContent = "Forgotten: reload the page to start afresh";
  });
  foot.appendChild(el("span", "", "Answers stay in this browser only (localStorage)."));
  foot.appendChild(clear);
  root.appendChild(foot);
  update();
  typeset(body);
})(__WMB_ARGS__);
