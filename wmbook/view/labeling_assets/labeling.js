(function (uid, data) {
  "use strict";
  var root = document.getElementById(uid);
  if (!root) { return; }
  var body = root.querySelector(".wmb-lab-body");
  var pool = data.pool, test = data.test, d = data.dims;
  var labelled = [], answers = [], random = false, history = [];
  var w = new Array(d).fill(0), b = 0;
  function sigmoid(z) { return 1 / (1 + Math.exp(-z)); }
  function score(x) { var z = b; for (var j = 0; j < d; j++) { z += w[j] * x[j]; } return sigmoid(z); }
  function fit() {  // the loop of wmbook.lab.active.fit_logistic_gd
    w = new Array(d).fill(0); b = 0;
    var n = labelled.length;
    if (n === 0) { return; }
    for (var s = 0; s < data.steps; s++) {
      var gw = new Array(d).fill(0), gb = 0;
      for (var i = 0; i < n; i++) {
        var x = pool[labelled[i]].x, g = score(x) - answers[i];
        for (var j = 0; j < d; j++) { gw[j] += g * x[j]; }
        gb += g;
      }
      for (var j2 = 0; j2 < d; j2++) { w[j2] -= data.lr * (gw[j2] / n + data.l2 * w[j2]); }
      b -= data.lr * gb / n;
    }
  }
  function accuracy() {
    var ok = 0;
    for (var i = 0; i < test.y.length; i++) { if ((score(test.X[i]) > 0.5 ? 1 : 0) === test.y[i]) { ok++; } }
    return ok / test.y.length;
  }
  function next() {  // least confident: p closest to 1/2; ties go to the first in pool order
    var best = -1, bestU = -1, free = [];
    for (var i = 0; i < pool.length; i++) {
      if (labelled.indexOf(i) >= 0) { continue; }
      free.push(i);
      var p = score(pool[i].x), u = 1 - Math.max(p, 1 - p);
      if (u > bestU + 1e-12) { bestU = u; best = i; }
    }
    if (random && free.length) { return free[Math.floor(Math.random() * free.length)]; }
    return best;
  }
  var asked = -1;
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) { e.className = cls; } if (text !== undefined) { e.textContent = text; } return e; }
  function render() {
    body.textContent = "";
    var acc = accuracy();
    root.setAttribute("data-wmb-labels", String(labelled.length));
    root.setAttribute("data-wmb-acc", acc.toFixed(6));
    root.setAttribute("data-wmb-labelled", labelled.map(function (i, k) { return i + ":" + answers[k]; }).join(","));
    body.appendChild(el("p", "wmb-lab-stat", "Labels given: " + labelled.length + ". Accuracy on " + test.y.length +
      " held-out sentences (their SST-2 labels): " + (100 * acc).toFixed(1) + "% (chance about 50%; the same model on " +
      "all " + data.n_full + " training labels: " + (100 * data.full_acc).toFixed(1) + "%)."));
    asked = next();
    if (asked < 0) { body.appendChild(el("p", null, "The pool is used up.")); return; }
    var p = score(pool[asked].x);
    body.appendChild(el("p", "wmb-lab-why", (random ? "A random sentence" : "The sentence the model is least sure of") +
      " (its p(positive) = " + p.toFixed(2) + "):"));
    body.appendChild(el("blockquote", "wmb-lab-text", pool[asked].t));
    var row = el("div", "wmb-lab-buttons");
    [["positive", 1], ["negative", 0]].forEach(function (pair) {
      var btn = el("button", "wmb-lab-" + pair[0], pair[0]);
      btn.type = "button";
      btn.addEventListener("click", function () { give(pair[1]); });
      row.appendChild(btn);
    });
    var lab = el("label", "wmb-lab-random");
    var box = el("input"); box.type = "checkbox"; box.checked = random;
    box.addEventListener("change", function () { random = box.checked; render(); });
    lab.appendChild(box); lab.appendChild(document.createTextNode(" ask at random instead"));
    row.appendChild(lab);
    body.appendChild(row);
    if (history.length) {
      body.appendChild(el("p", "wmb-lab-hist", "Accuracy after each label: " +
        history.map(function (a) { return (100 * a).toFixed(0) + "%"; }).join(" ")));
    }
  }
  function give(y) {
    labelled.push(asked); answers.push(y);
    fit();
    history.push(accuracy());
    render();
  }
  render();
  root.setAttribute("data-wmb-ready", "1");
})(__WMB_ARGS__);
