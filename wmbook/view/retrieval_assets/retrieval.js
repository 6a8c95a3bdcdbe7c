/* wmbook retrieval browser: pick a question, see each retriever's top passages with their scores,
 * the gold passage marked. Called once per fragment as wmbRetrieval(uid, data); data = {title,
 * methods: [{key, name}], passages: {id: text}, stop: [words], questions: [{q, gold, answer,
 * ranks: {key: rank of the gold passage}, top: {key: [[passage id, score], ...]}}]}.
 * Everything is computed in Python; this script only shows it. */
(function (uid, data) {
  "use strict";
  var root = document.getElementById(uid);
  if (!root || root.getAttribute("data-wmb-ready")) return;
  root.setAttribute("data-wmb-ready", "1");
  var body = root.querySelector(".wmb-rv-body");
  body.textContent = "";
  var stop = {};
  data.stop.forEach(function (w) { stop[w] = true; });
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function terms(text) {
    var out = {};
    (text.toLowerCase().match(/\w\w+/g) || []).forEach(function (w) { if (!stop[w]) out[w] = true; });
    return out;
  }
  function highlighted(text, words, limit) { /* question words in bold; text only, never HTML */
    var span = el("span", "wmb-rv-text");
    var shown = limit && text.length > limit ? text.slice(0, limit) + " …" : text;
    shown.split(/(\w+)/).forEach(function (part, i) {
      if (i % 2 && words[part.toLowerCase()]) span.appendChild(el("b", "wmb-rv-hit", part));
      else if (part) span.appendChild(document.createTextNode(part));
    });
    return span;
  }
  var head = el("div", "wmb-rv-head");
  head.appendChild(el("span", "wmb-rv-title", data.title));
  var select = el("select");
  select.setAttribute("aria-label", "question");
  data.questions.forEach(function (q, i) {
    var o = el("option", null, (i + 1) + ". " + q.q);
    o.value = String(i);
    select.appendChild(o);
  });
  var next = el("button", null, "next question");
  next.type = "button";
  head.appendChild(select);
  head.appendChild(next);
  body.appendChild(head);
  var view = el("div");
  body.appendChild(view);
  body.appendChild(el("div", "wmb-rv-note", "Green: the paragraph the question was written on. Bold: the question's words " +
    "(stop words left out). Click a passage to see all of it. Scores: BM25 in its own units, dense = cosine, " +
    "hybrid = the weighted sum of the two after min-max scaling per question."));
  function show(i) {
    var q = data.questions[i];
    var words = terms(q.q);
    view.textContent = "";
    view.appendChild(el("div", "wmb-rv-q", "Q: " + q.q));
    view.appendChild(el("div", "wmb-rv-gold", "Gold answer: " + q.answer));
    var cols = el("div", "wmb-rv-cols");
    data.methods.forEach(function (m) {
      var col = el("div", "wmb-rv-col");
      col.setAttribute("data-method", m.key);
      col.appendChild(el("h4", null, m.name));
      var r = q.ranks[m.key];
      col.appendChild(el("div", "wmb-rv-rank", r === 1 ? "gold passage ranked first" : "gold passage at rank " + r));
      var ol = el("ol");
      q.top[m.key].forEach(function (hit) {
        var li = el("li", hit[0] === q.gold ? "wmb-rv-isgold" : "");
        var line = el("div");
        if (hit[0] === q.gold) line.appendChild(el("span", "wmb-rv-mark", "\u2713 gold  "));
        line.appendChild(el("span", "wmb-rv-score", "score " + hit[1]));
        li.appendChild(line);
        var text = data.passages[hit[0]];
        function passage(full) { /* a click shows the whole passage, another the start */
          var span = highlighted(text, words, full ? 0 : 220);
          span.setAttribute("data-full", full ? "1" : "0");
          span.addEventListener("click", function () { li.replaceChild(passage(!full), span); });
          return span;
        }
        li.appendChild(passage(false));
        ol.appendChild(li);
      });
      col.appendChild(ol);
      cols.appendChild(col);
    });
    view.appendChild(cols);
    root.setAttribute("data-wmb-question", String(i));
  }
  select.addEventListener("change", function () { show(parseInt(select.value, 10)); });
  next.addEventListener("click", function () {
    var i = (parseInt(select.value, 10) + 1) % data.questions.length;
    select.value = String(i);
    show(i);
  });
  show(0);
})(__WMB_ARGS__);
