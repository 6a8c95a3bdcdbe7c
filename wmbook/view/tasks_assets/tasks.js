/* wmbook reader tasks (wmbook/view/tasks.py): digit span, change detection, offloading (with a
   surprise delayed test), n-back.
   One function call per task; Python fills in the arguments (last line): the task's root id
   and its options (JSON, with < > & escaped). Nothing is fetched and nothing is sent:
   results stay in this browser's localStorage (key "wmbook-tasks-v1:<task>"), with a
   button to clear them and one to download them as CSV.
   The scorers (window.wmbookTasks) mirror wmbook/lab/reader.py line for line; the tests
   run both on the same responses. Timing: performance.now() and requestAnimationFrame;
   every duration is multiplied by options.speed (1 for readers, small in the tests).
   wmbMulberry32 comes from shared_assets/mulberry32.js, which tasks.py inlines in front. */
(function (ROOT_ID, P) {
  "use strict";
  var SCRIPT = document.currentScript;

  // ------------------------------------------------------------------ scorers (= reader.py)
  var S = {
    SPAN_START: { forward: 3, backward: 2 }, SPAN_MIN: 2, SPAN_MAX: 12,
    digits: function (s) { return String(s).replace(/[^0-9]/g, ""); },
    spanCorrect: function (presented, response, direction) {
      var p = S.digits(presented), r = S.digits(response);
      return r === (direction === "backward" ? p.split("").reverse().join("") : p);
    },
    nextLength: function (L, ok, errors) {  // -> [next length, errors in a row]
      if (ok) return [Math.min(L + 1, S.SPAN_MAX), 0];
      errors += 1;
      if (errors === 2) return [Math.max(L - 1, S.SPAN_MIN), 0];
      return [L, errors];
    },
    spanLengths: function (correct, start) {
      var out = [], L = start, e = 0;
      for (var i = 0; i < correct.length; i++) { out.push(L); var n = S.nextLength(L, correct[i], e); L = n[0]; e = n[1]; }
      return out;
    },
    meanSpan: function (rows) {  // L_min - 1/2 + sum_L p(L)
      var by = {}, lens = [];
      rows.forEach(function (r) {
        var L = r.length;
        if (!(L in by)) { by[L] = [0, 0]; lens.push(L); }
        by[L][0] += r.correct ? 1 : 0; by[L][1] += 1;
      });
      if (!lens.length) return NaN;
      var lo = Math.min.apply(null, lens), hi = Math.max.apply(null, lens), total = 0;
      function p(L) { return by[L][0] / by[L][1]; }
      for (var L = lo; L <= hi; L++) {
        if (L in by) { total += p(L); continue; }
        var below = Math.max.apply(null, lens.filter(function (k) { return k < L; }));
        var above = Math.min.apply(null, lens.filter(function (k) { return k > L; }));
        total += p(below) + (p(above) - p(below)) * (L - below) / (above - below);
      }
      return lo - 0.5 + total;
    },
    scoreSpan: function (trials, direction) {
      var correct = [], lengths = [], rows = [], maxc = 0;
      trials.forEach(function (t) {
        var ok = S.spanCorrect(t.presented, t.response, direction), L = S.digits(t.presented).length;
        correct.push(ok); lengths.push(L); rows.push({ length: L, correct: ok });
        if (ok && L > maxc) maxc = L;
      });
      return { n: rows.length, correct: correct, lengths: lengths, mean_span: S.meanSpan(rows), max_correct: maxc };
    },
    cowanK: function (trials) {  // K = N (H - F) per set size
      var c = {}, sizes = [], ok = 0, all = 0;
      trials.forEach(function (t) {
        var N = t.n;
        if (!(N in c)) { c[N] = [0, 0, 0, 0]; sizes.push(N); }
        var ch = !!t.change, said = !!t.said_change;
        if (ch) { c[N][0] += said ? 1 : 0; c[N][1] += 1; } else { c[N][2] += said ? 1 : 0; c[N][3] += 1; }
        ok += (ch === said) ? 1 : 0; all += 1;
      });
      sizes.sort(function (a, b) { return a - b; });
      var out = {}, ks = [];
      sizes.forEach(function (N) {
        var x = c[N], H = x[1] ? x[0] / x[1] : NaN, F = x[3] ? x[2] / x[3] : NaN, K = N * (H - F);
        out[N] = { hits: H, fa: F, K: K, n_change: x[1], n_same: x[3] };
        ks.push(K);
      });
      out.K_mean = ks.length ? ks.reduce(function (a, b) { return a + b; }, 0) / ks.length : NaN;
      out.accuracy = all ? ok / all : NaN;
      return out;
    },
    lettersInPlace: function (presented, response) {
      var p = String(presented).toUpperCase().replace(/[^A-Z]/g, "");
      var r = String(response).toUpperCase().replace(/[^A-Z]/g, ""), hit = 0;
      for (var i = 0; i < p.length && i < r.length; i++) if (p[i] === r[i]) hit++;
      return hit / p.length;
    },
    scoreOffloading: function (trials) {
      var sc = { memory: [], notes: [] };
      trials.forEach(function (t) { if (!("said_old" in t)) sc[t.condition].push(S.lettersInPlace(t.presented, t.response)); });
      function mean(v) { return v.length ? v.reduce(function (a, b) { return a + b; }, 0) / v.length : NaN; }
      var out = { memory: mean(sc.memory), notes: mean(sc.notes) };
      out.difference = out.notes - out.memory;
      out.n = { memory: sc.memory.length, notes: sc.notes.length };
      return out;
    },
    blockOrder: function (firstWithNotes, blocks) {
      var a = firstWithNotes ? "notes" : "memory", b = firstWithNotes ? "memory" : "notes", out = [];
      for (var k = 0; k < (blocks || 2); k++) out.push(k % 2 === 0 ? a : b);
      return out;
    },
    rng: wmbMulberry32,  // Mulberry32 (shared_assets/mulberry32.js), = reader.mulberry32
    // ---- the delayed test of the offloading task (= reader.recognition_lure, reader.score_delayed)
    LETTERS: "BCDFGHJKLMNPQRSTVWXZ",
    lure: function (presented, rand, changes) {
      var p = String(presented).toUpperCase().replace(/[^A-Z]/g, ""), out = p.split(""), pos = [];
      var unused = S.LETTERS.split("").filter(function (c) { return p.indexOf(c) < 0; });
      changes = changes || 2;
      while (pos.length < changes) { var i = Math.floor(rand() * p.length); if (pos.indexOf(i) < 0) pos.push(i); }
      pos.forEach(function (i) { var j = Math.floor(rand() * unused.length); out[i] = unused.splice(j, 1)[0]; });
      return out.join("");
    },
    scoreDelayed: function (rows) {  // per condition: H, F, H - F
      var c = { memory: [0, 0, 0, 0], notes: [0, 0, 0, 0] }, out = {};
      rows.forEach(function (t) {
        if (!("said_old" in t)) return;
        var x = c[t.condition], said = !!t.said_old;
        if (t.old) { x[0] += said ? 1 : 0; x[1] += 1; } else { x[2] += said ? 1 : 0; x[3] += 1; }
      });
      ["memory", "notes"].forEach(function (k) {
        var x = c[k], H = x[1] ? x[0] / x[1] : NaN, F = x[3] ? x[2] / x[3] : NaN;
        out[k] = { hits: H, fa: F, corrected: H - F, n_old: x[1], n_new: x[3] };
      });
      return out;
    },
    // ---- n-back (= reader.n_back_stream, reader.z_score, reader.d_prime, reader.score_n_back)
    nBackStream: function (length, n, targets, seed, letters) {
      var rand = S.rng(seed), slots = [], chosen = {}, count = 0, out = [], i;
      for (i = n; i < length; i++) slots.push(i);
      while (count < targets) { var s = slots[Math.floor(rand() * slots.length)]; if (!chosen[s]) { chosen[s] = true; count++; } }
      for (i = 0; i < length; i++) {
        var letter;
        if (chosen[i]) letter = out[i - n].letter;
        else { do { letter = letters[Math.floor(rand() * letters.length)]; } while (i >= n && letter === out[i - n].letter); }
        out.push({ index: i, letter: letter, target: !!chosen[i] });
      }
      return out;
    },
    zScore: function (p) {  // the standard normal quantile: Wichura's AS241, as Python's statistics.NormalDist
      var q = p - 0.5, r, num, den, x;
      if (Math.abs(q) <= 0.425) {
        r = 0.180625 - q * q;
        num = (((((((2.5090809287301226727e+3 * r + 3.3430575583588128105e+4) * r + 6.7265770927008700853e+4) * r +
          4.5921953931549871457e+4) * r + 1.3731693765509461125e+4) * r + 1.9715909503065514427e+3) * r +
          1.3314166789178437745e+2) * r + 3.3871328727963666080e+0) * q;
        den = (((((((5.2264952788528545610e+3 * r + 2.8729085735721942674e+4) * r + 3.9307895800092710610e+4) * r +
          2.1213794301586595867e+4) * r + 5.3941960214247511077e+3) * r + 6.8718700749205790830e+2) * r +
          4.2313330701600911252e+1) * r + 1.0);
        return num / den;
      }
      r = q <= 0 ? p : 1 - p;
      r = Math.sqrt(-Math.log(r));
      if (r <= 5) {
        r = r - 1.6;
        num = (((((((7.7454501427834140764e-4 * r + 2.2723844989269184583e-2) * r + 2.4178072517745061177e-1) * r +
          1.2704582524523683826e+0) * r + 3.6478483247632046050e+0) * r + 5.7694972214606914055e+0) * r +
          4.6303378461565452959e+0) * r + 1.4234371107496835773e+0);
        den = (((((((1.0507500716444168432e-9 * r + 5.4759380849953449460e-4) * r + 1.5198666563616457197e-2) * r +
          1.4810397642748007459e-1) * r + 6.8976733498510000455e-1) * r + 1.6763848301838038494e+0) * r +
          2.0531916266377588219e+0) * r + 1.0);
      } else {
        r = r - 5;
        num = (((((((2.0103343992922881327e-7 * r + 2.7115555687434875782e-5) * r + 1.2426609473880784386e-3) * r +
          2.6532189526576123093e-2) * r + 2.9656057182850489123e-1) * r + 1.7848265399172913358e+0) * r +
          5.4637849111641143699e+0) * r + 6.6579046435011037772e+0);
        den = (((((((2.0442631033899397856e-15 * r + 1.4215117583164458887e-7) * r + 1.8463183175100546818e-5) * r +
          7.8686913114561325910e-4) * r + 1.4875361290850614853e-2) * r + 1.3692988092273580531e-1) * r +
          5.9983220655588793769e-1) * r + 1.0);
      }
      x = num / den;
      return q < 0 ? -x : x;
    },
    dPrime: function (hits, nSignal, fas, nNoise) {  // log-linear correction (Hautus, 1995)
      return S.zScore((hits + 0.5) / (nSignal + 1)) - S.zScore((fas + 0.5) / (nNoise + 1));
    },
    scoreNBack: function (trials) {
      var h = 0, m = 0, f = 0, c = 0;
      trials.forEach(function (t) {
        var said = !!t.responded;
        if (t.target) { if (said) h++; else m++; } else { if (said) f++; else c++; }
      });
      return { hits: h, misses: m, false_alarms: f, correct_rejections: c,
               hit_rate: (h + m) ? h / (h + m) : NaN, fa_rate: (f + c) ? f / (f + c) : NaN,
               d_prime: S.dPrime(h, h + m, f, f + c) };
    }
  };
  if (!window.wmbookTasks) window.wmbookTasks = S;

  // ------------------------------------------------------------------ helpers
  var root = document.getElementById(ROOT_ID);
  if (!root) { root = SCRIPT && SCRIPT.previousElementSibling; }
  if (!root) return;
  var O = P.options || {};
  // every duration is multiplied by the speed: options.speed, or window.wmbookTaskSpeed when a test sets it
  function speed() { return +window.wmbookTaskSpeed > 0 ? +window.wmbookTaskSpeed : (+O.speed > 0 ? +O.speed : 1); }
  var seed = (O.seed === null || O.seed === undefined) ? Math.floor(Math.random() * 4294967296) : O.seed;
  var rand = S.rng(seed);
  var KEY = "wmbook-tasks-v1:" + P.task + (O.storage_suffix ? ":" + O.storage_suffix : "");
  var api = { task: P.task, phase: "idle", current: null, trials: [], result: null, seed: seed, durations: [] };
  root.wmbTask = api;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function fmt(x, d) { return (x === null || x === undefined || isNaN(x)) ? "\u2013" : x.toFixed(d === undefined ? 2 : d); }
  // wait `ms` (times speed()) on animation frames; a timer fallback keeps going where frames stop
  function after(ms, cb) {
    var t0 = performance.now(), wait = ms * speed(), done = false;
    function finish() { if (!done) { done = true; cb(performance.now()); } }
    function tick() { if (done) return; if (performance.now() - t0 >= wait) finish(); else requestAnimationFrame(tick); }
    requestAnimationFrame(tick);
    setTimeout(finish, wait + 250);
  }
  // after the next frame is painted: the time the reader could first see a change
  function painted(cb) { requestAnimationFrame(function () { cb(performance.now()); }); }
  function shuffle(a) {
    for (var i = a.length - 1; i > 0; i--) { var j = Math.floor(rand() * (i + 1)), t = a[i]; a[i] = a[j]; a[j] = t; }
    return a;
  }

  // storage: every finished run, kept only in this browser
  var storageOk = true;
  function loadRuns() {
    try { return JSON.parse(window.localStorage.getItem(KEY) || "[]"); } catch (e) { storageOk = false; return []; }
  }
  function saveRun(run) {
    var runs = loadRuns(); runs.push(run);
    try { window.localStorage.setItem(KEY, JSON.stringify(runs)); } catch (e) { storageOk = false; }
  }
  function clearRuns() { try { window.localStorage.removeItem(KEY); } catch (e) { storageOk = false; } }
  function csv(runs) {
    var cols = [], lines = [];
    runs.forEach(function (run, k) {
      run.trials.forEach(function (t) { Object.keys(t).forEach(function (c) { if (cols.indexOf(c) < 0) cols.push(c); }); });
    });
    lines.push(["run", "date", "task"].concat(cols).join(","));
    function q(v) { var s = (v === undefined || v === null) ? "" : String(v); return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s; }
    runs.forEach(function (run, k) {
      run.trials.forEach(function (t) { lines.push([k + 1, run.date, run.task].concat(cols.map(function (c) { return q(t[c]); })).join(",")); });
    });
    return lines.join("\n") + "\n";
  }
  api.csv = function () { return csv(loadRuns()); };

  // ------------------------------------------------------------------ the frame
  var body = root.querySelector(".wmb-task-body");
  while (body.firstChild) body.removeChild(body.firstChild);
  var stage = el("div", "wmb-stage"); stage.setAttribute("aria-live", "polite"); stage.tabIndex = 0;
  var prompt = el("div", "wmb-prompt", O.intro || "");
  var controls = el("div", "wmb-controls");
  var startBtn = el("button", "wmb-start", "Start"); startBtn.type = "button";
  var clearBtn = el("button", "wmb-clear", "Clear my results"); clearBtn.type = "button";
  var csvBtn = el("button", "wmb-csv", "Download CSV"); csvBtn.type = "button";
  controls.appendChild(startBtn); controls.appendChild(csvBtn); controls.appendChild(clearBtn);
  var resultBox = el("div", "wmb-result"); resultBox.setAttribute("aria-live", "polite");
  var history = el("div", "wmb-history");
  body.appendChild(prompt); body.appendChild(stage); body.appendChild(controls);
  body.appendChild(resultBox); body.appendChild(history);

  function showHistory() {
    while (history.firstChild) history.removeChild(history.firstChild);
    var runs = loadRuns();
    if (!storageOk) { history.appendChild(el("p", "wmb-note", "This browser does not let the page keep results (localStorage is unavailable); they are shown but not saved.")); }
    if (!runs.length) { history.appendChild(el("p", "wmb-note", "No saved runs yet. Results stay in this browser only.")); return; }
    var tab = el("table", "wmb-table"), tr = el("tr");
    ["run", "date"].concat(P.columns.map(function (c) { return c[1]; })).forEach(function (h) { tr.appendChild(el("th", null, h)); });
    tab.appendChild(tr);
    runs.forEach(function (run, k) {
      var row = el("tr");
      row.appendChild(el("td", null, k + 1)); row.appendChild(el("td", null, run.date.slice(0, 16).replace("T", " ")));
      P.columns.forEach(function (c) { var v = run.score[c[0]]; row.appendChild(el("td", null, typeof v === "number" ? fmt(v, c[2]) : v)); });
      tab.appendChild(row);
    });
    history.appendChild(el("p", "wmb-note", "Your saved runs (only in this browser):"));
    history.appendChild(tab);
  }
  clearBtn.addEventListener("click", function () { clearRuns(); showHistory(); });
  csvBtn.addEventListener("click", function () {
    var blob = new Blob([api.csv()], { type: "text/csv" }), a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = "wmbook-" + P.task + ".csv";
    document.body.appendChild(a); a.click(); document.body.removeChild(a);
    setTimeout(function () { URL.revokeObjectURL(a.href); }, 1000);
  });

  function finishRun(score, records) {
    api.result = score; api.phase = "done";
    saveRun({ date: new Date().toISOString(), task: P.task, seed: seed, score: score, trials: records || api.trials });
    startBtn.disabled = false; startBtn.textContent = "Run again";
    showHistory();
  }
  function line(text, cls) { resultBox.appendChild(el("p", cls || null, text)); }
  function clearStage() { while (stage.firstChild) stage.removeChild(stage.firstChild); stage.className = "wmb-stage"; }
  function big(text) { clearStage(); stage.appendChild(el("div", "wmb-big", text)); }

  // a keypad (touch) that also listens to the keyboard while the stage has the focus
  var keyHandler = null;
  root.addEventListener("keydown", function (ev) {
    if (!keyHandler || ev.target.tagName === "TEXTAREA" || (ev.target.tagName === "INPUT" && ev.target.type === "text" && ev.key !== "Enter")) return;
    if (keyHandler(ev.key)) ev.preventDefault();
  });
  function keypad(keys) {
    var pad = el("div", "wmb-pad");
    keys.forEach(function (k) {
      var b = el("button", "wmb-key", k[1]); b.type = "button"; b.setAttribute("data-key", k[0]);
      b.addEventListener("click", function () { if (keyHandler) keyHandler(k[0]); stage.focus(); });
      pad.appendChild(b);
    });
    return pad;
  }

  // ------------------------------------------------------------------ digit span
  function runSpan() {
    var dir = O.direction === "backward" ? "backward" : "forward";
    var nTrials = O.trials || 14, L = S.SPAN_START[dir], errors = 0, k = 0;
    api.trials = []; resultBox.textContent = "";
    function trial() {
      if (k >= nTrials) {
        var sc = S.scoreSpan(api.trials, dir);
        clearStage(); big("Done");
        line("Mean span: " + fmt(sc.mean_span) + " digits (" + dir + "); longest list recalled: " + sc.max_correct + ".", "wmb-score");
        if (O.reference) line(O.reference, "wmb-ref");
        finishRun({ mean_span: sc.mean_span, max_correct: sc.max_correct, direction: dir });
        return;
      }
      var seq = "", prev = -1;
      for (var i = 0; i < L; i++) { var d; do { d = Math.floor(rand() * 10); } while (d === prev); seq += d; prev = d; }
      api.current = { presented: seq, length: L, index: k }; api.phase = "presenting";
      var i2 = 0;
      big("+");
      after(500, function show() {
        if (i2 >= seq.length) { respond(); return; }
        big(seq[i2]);
        painted(function (tOn) {
          after(O.digit_on_ms || 700, function (tOff) {
            api.durations.push(tOff - tOn);
            big("");
            i2++;
            after(1000 - (O.digit_on_ms || 700), show);
          });
        });
      });
      function respond() {
        api.phase = "responding";
        var typed = "";
        clearStage();
        stage.appendChild(el("div", "wmb-ask", dir === "forward" ? "Type the digits in the order shown, then Enter" : "Type the digits in REVERSE order, then Enter"));
        var shown = el("div", "wmb-typed", "\u00a0");
        stage.appendChild(shown);
        stage.appendChild(keypad([["1", "1"], ["2", "2"], ["3", "3"], ["4", "4"], ["5", "5"], ["6", "6"], ["7", "7"], ["8", "8"], ["9", "9"], ["Backspace", "\u232b"], ["0", "0"], ["Enter", "OK"]]));
        stage.focus();
        keyHandler = function (key) {
          if (/^[0-9]$/.test(key)) { if (typed.length < 14) typed += key; }
          else if (key === "Backspace") typed = typed.slice(0, -1);
          else if (key === "Enter") {
            if (!typed.length) return true;
            keyHandler = null;
            var ok = S.spanCorrect(seq, typed, dir);
            api.trials.push({ trial: k + 1, direction: dir, length: L, presented: seq, response: typed, correct: ok });
            var n = S.nextLength(L, ok, errors); L = n[0]; errors = n[1]; k++;
            big(ok ? "\u2713" : "\u2717"); stage.className = "wmb-stage " + (ok ? "wmb-ok" : "wmb-bad");
            after(600, trial);
            return true;
          } else return false;
          shown.textContent = typed || "\u00a0";
          return true;
        };
      }
    }
    trial();
  }

  // ------------------------------------------------------------------ change detection
  var COLOURS = ["#e41a1c", "#377eb8", "#4daf4a", "#ffff33", "#984ea3", "#ff7f00", "#000000", "#ffffff"];
  function runChange() {
    var sizes = O.set_sizes || [4, 6], per = O.trials_per_size || 32, plan = [];
    sizes.forEach(function (N) { for (var i = 0; i < per; i++) plan.push({ n: N, change: i % 2 === 1 }); });
    shuffle(plan);
    api.trials = []; resultBox.textContent = "";
    var k = 0, COLS = 4, ROWS = 3;
    function trial() {
      if (k >= plan.length) {
        var sc = S.cowanK(api.trials);
        clearStage(); big("Done");
        var parts = sizes.map(function (N) { return "N = " + N + ": K = " + fmt(sc[N].K) + " (hits " + fmt(sc[N].hits) + ", false alarms " + fmt(sc[N].fa) + ")"; });
        line("Cowan's K = N(H \u2212 F): " + parts.join("; ") + ". Mean K: " + fmt(sc.K_mean) + ".", "wmb-score");
        if (O.reference) line(O.reference, "wmb-ref");
        var score = { K_mean: sc.K_mean, accuracy: sc.accuracy };
        sizes.forEach(function (N) { score["K_" + N] = sc[N].K; });
        finishRun(score);
        return;
      }
      var t = plan[k], cells = shuffle(Array.apply(null, Array(COLS * ROWS)).map(function (_, i) { return i; })).slice(0, t.n);
      var cols = shuffle(COLOURS.slice()).slice(0, t.n), probe = Math.floor(rand() * t.n);
      var unused = COLOURS.filter(function (c) { return cols.indexOf(c) < 0; });
      var probeColour = t.change ? unused[Math.floor(rand() * unused.length)] : cols[probe];
      api.current = { n: t.n, change: t.change, index: k }; api.phase = "fixation";
      function board(items) {
        clearStage(); stage.className = "wmb-stage wmb-board";
        var grid = el("div", "wmb-grid");
        for (var c = 0; c < COLS * ROWS; c++) {
          var cell = el("div", "wmb-cell"), j = items.cells.indexOf(c);
          if (j >= 0) { var sq = el("div", "wmb-square"); sq.style.background = items.colours[j]; cell.appendChild(sq); }
          grid.appendChild(cell);
        }
        stage.appendChild(grid);
      }
      board({ cells: [], colours: [] }); stage.querySelector(".wmb-grid").appendChild(el("div", "wmb-fix", "+"));
      after(O.fixation_ms || 500, function () {
        board({ cells: cells, colours: cols }); api.phase = "array";
        painted(function (tOn) {
          after(O.array_ms || 100, function () {
            board({ cells: [], colours: [] }); api.phase = "blank";
            painted(function (tOff) {
              api.durations.push(tOff - tOn);
              after(O.blank_ms || 900, function () {
                board({ cells: [cells[probe]], colours: [probeColour] }); api.phase = "probe";
                var pad = keypad([["s", "Same (S)"], ["d", "Changed (D)"]]);
                stage.appendChild(pad); stage.focus();
                keyHandler = function (key) {
                  key = String(key).toLowerCase();
                  if (key !== "s" && key !== "d") return false;
                  keyHandler = null;
                  api.trials.push({ trial: k + 1, n: t.n, change: t.change, said_change: key === "d", shown_ms: Math.round(tOff - tOn) });
                  k++;
                  board({ cells: [], colours: [] });
                  after(400, trial);
                  return true;
                };
              });
            });
          });
        });
      });
    }
    trial();
  }

  // ------------------------------------------------------------------ offloading
  var LETTERS = S.LETTERS;
  function runOffload() {
    var per = O.lists_per_block || 4, len = O.length || 7;
    var first = O.first_with_notes;
    if (first === null || first === undefined) first = rand() < 0.5;  // counterbalanced at random
    var order = S.blockOrder(first, 2), plan = [];
    order.forEach(function (cond) { for (var i = 0; i < per; i++) plan.push(cond); });
    api.order = order; api.trials = []; api.probes = []; resultBox.textContent = "";
    var k = 0;
    function finish() {
      var sc = S.scoreOffloading(api.trials), dl = O.delayed_test === false ? null : S.scoreDelayed(api.probes);
      clearStage(); big("Done");
      line("Letters recalled in place \u2014 from memory: " + fmt(100 * sc.memory, 0) + " %; with notes: " + fmt(100 * sc.notes, 0) + " % (order: " + order.join(" then ") + ").", "wmb-score");
      drawBars(sc);
      var score = { memory: sc.memory, notes: sc.notes, difference: sc.difference, first: order[0] };
      if (dl) {
        line("Surprise test, lists told apart from their changed copies (H \u2212 F) \u2014 from memory: " + fmt(dl.memory.corrected) +
             "; with notes: " + fmt(dl.notes.corrected) + ".", "wmb-score wmb-delayed");
        drawDelayed(sc, dl);
        score.delayed_memory = dl.memory.corrected; score.delayed_notes = dl.notes.corrected;
      }
      if (O.reference) line(O.reference, "wmb-ref");
      finishRun(score, api.trials.concat(api.probes));
    }
    // the surprise test: every list as it was (old) and with two letters changed (a lure), shuffled
    function delayed() {
      var probes = [];
      api.trials.forEach(function (t) {
        probes.push({ list: t.trial, condition: t.condition, presented: t.presented, old: true });
        probes.push({ list: t.trial, condition: t.condition, presented: S.lure(t.presented, rand, 2), old: false });
      });
      shuffle(probes);
      var j = 0;
      clearStage();
      stage.appendChild(el("div", "wmb-ask", "Surprise test. You will see each list again, as it was or with two letters changed. " +
                                              "Press O (or tap Seen) if it is exactly a list you saw, N (New) if not."));
      api.phase = "intro-delayed";
      after(O.delayed_intro_ms || 4000, probe);
      function probe() {
        if (j >= probes.length) { finish(); return; }
        var pr = probes[j];
        api.current = { index: j, presented: pr.presented, old: pr.old, condition: pr.condition }; api.phase = "probe-showing";
        clearStage();
        stage.appendChild(el("div", "wmb-ask", "Surprise test: exactly a list you saw? " + (j + 1) + " of " + probes.length));
        stage.appendChild(el("div", "wmb-big wmb-probe", pr.presented));
        stage.appendChild(keypad([["o", "Seen (O)"], ["n", "New (N)"]])); stage.focus();
        painted(function (tOn) {
          api.phase = "recognition";  // the probe is on screen and the keys answer it
          keyHandler = function (key) {
            key = String(key).toLowerCase();
            if (key !== "o" && key !== "n") return false;
            keyHandler = null;
            api.probes.push({ part: "delayed", trial: j + 1, list: pr.list, condition: pr.condition, presented: pr.presented,
                              old: pr.old, said_old: key === "o", rt_ms: Math.round(performance.now() - tOn) });
            j++; big("");
            after(300, probe);
            return true;
          };
        });
      }
    }
    function trial() {
      if (k >= plan.length) {
        if (O.delayed_test === false) finish(); else delayed();
        return;
      }
      var cond = plan[k], seq = "";
      while (seq.length < len) { var c = LETTERS[Math.floor(rand() * LETTERS.length)]; if (seq.indexOf(c) < 0) seq += c; }
      api.current = { presented: seq, condition: cond, index: k }; api.phase = "presenting";
      clearStage();
      var head = el("div", "wmb-ask", (cond === "notes" ? "With notes: you may type anything into the notes box. " : "From memory: no notes. ") + "List " + (k + 1) + " of " + plan.length);
      var show = el("div", "wmb-big", "+");
      stage.appendChild(head); stage.appendChild(show);
      var notes = null;
      if (cond === "notes") {
        notes = el("textarea", "wmb-notes"); notes.rows = 2; notes.placeholder = "notes";
        notes.setAttribute("aria-label", "notes"); notes.setAttribute("autocomplete", "off");
        stage.appendChild(notes); notes.focus();
      }
      var i = 0;
      after(800, function next() {
        if (i >= seq.length) { show.textContent = ""; recall(); return; }
        show.textContent = seq[i];
        painted(function (tOn) {
          after(O.letter_on_ms || 700, function (tOff) {
            api.durations.push(tOff - tOn); show.textContent = ""; i++;
            after(1000 - (O.letter_on_ms || 700), next);
          });
        });
      });
      function recall() {
        api.phase = "responding";
        var input = el("input", "wmb-answer"); input.type = "text"; input.setAttribute("aria-label", "the letters, in order");
        input.setAttribute("autocomplete", "off"); input.setAttribute("autocapitalize", "characters"); input.spellcheck = false;
        var ok = el("button", "wmb-key", "OK"); ok.type = "button";
        var row = el("div", "wmb-answer-row"); row.appendChild(el("span", null, "The letters, in order: ")); row.appendChild(input); row.appendChild(ok);
        stage.appendChild(row); input.focus();
        function submit() {
          if (!input.value.replace(/[^A-Za-z]/g, "").length) return;
          keyHandler = null;
          api.trials.push({ part: "recall", trial: k + 1, condition: cond, presented: seq, response: input.value.toUpperCase().replace(/[^A-Z]/g, ""),
                            notes: notes ? notes.value : "", in_place: S.lettersInPlace(seq, input.value) });
          k++; big("");
          after(500, trial);
        }
        ok.addEventListener("click", submit);
        keyHandler = function (key) { if (key === "Enter") { submit(); return true; } return false; };
      }
    }
    trial();
  }
  function drawDelayed(sc, dl) {
    var tab = el("table", "wmb-table wmb-delayed-table"), tr = el("tr");
    ["", "now: letters in place", "later: hits (H)", "later: false alarms (F)", "later: H \u2212 F"].forEach(function (h) { tr.appendChild(el("th", null, h)); });
    tab.appendChild(tr);
    [["from memory", "memory"], ["with notes", "notes"]].forEach(function (c) {
      var row = el("tr"), d = dl[c[1]];
      row.appendChild(el("td", null, c[0])); row.appendChild(el("td", null, fmt(100 * sc[c[1]], 0) + " %"));
      row.appendChild(el("td", null, fmt(d.hits))); row.appendChild(el("td", null, fmt(d.fa))); row.appendChild(el("td", null, fmt(d.corrected)));
      tab.appendChild(row);
    });
    resultBox.appendChild(tab);
  }
  function drawBars(sc) {
    var box = el("div", "wmb-bars");
    [["from memory", sc.memory], ["with notes", sc.notes]].forEach(function (b) {
      var row = el("div", "wmb-bar-row"), bar = el("div", "wmb-bar");
      bar.style.width = Math.max(0, Math.min(1, b[1] || 0)) * 100 + "%";
      row.appendChild(el("span", "wmb-bar-label", b[0])); var track = el("div", "wmb-track"); track.appendChild(bar);
      row.appendChild(track); row.appendChild(el("span", "wmb-bar-value", fmt(100 * b[1], 0) + " %"));
      box.appendChild(row);
    });
    resultBox.appendChild(box);
  }

  // ------------------------------------------------------------------ n-back (a demonstration)
  function runNBack() {
    var n = O.n || 2, len = O.length || 30, onMs = O.on_ms || 500, soa = O.soa_ms || 2000;
    var streamSeed = Math.floor(rand() * 4294967296);
    var stream = S.nBackStream(len, n, O.targets, streamSeed, O.letters || "BCDFGHJK");
    api.stream = stream; api.stream_seed = streamSeed; api.trials = []; resultBox.textContent = "";
    var k = 0, cur = null;
    clearStage();
    var head = el("div", "wmb-ask", "Press Space or tap Match when the letter is the same as " + (n === 1 ? "the one before" : "the one " + n + " before"));
    var show = el("div", "wmb-big", "+");
    stage.appendChild(head); stage.appendChild(show); var pad = keypad([[" ", "Match (Space)"]]); pad.className += " wmb-pad-one";
    stage.appendChild(pad); stage.focus();
    keyHandler = function (key) {
      if (key !== " " && key !== "Spacebar") return false;
      if (cur && !cur.responded) { cur.responded = true; cur.rt_ms = Math.round(performance.now() - cur.t0); }
      return true;
    };
    api.phase = "fixation";
    after(1000, function next() {
      if (cur) { var r = cur.row; r.responded = cur.responded; r.rt_ms = cur.responded ? cur.rt_ms : ""; api.trials.push(r); cur = null; }
      if (k >= len) { keyHandler = null; done(); return; }
      var item = stream[k];
      show.textContent = item.letter;
      api.current = { index: k, letter: item.letter, target: item.target }; api.phase = "item";
      cur = { row: { trial: k + 1, index: k, letter: item.letter, target: item.target }, responded: false, t0: performance.now() };
      painted(function (tOn) {
        cur.t0 = tOn;
        after(onMs, function (tOff) {
          api.durations.push(tOff - tOn); show.textContent = "\u00a0";
          after(soa - onMs, function () { k++; next(); });
        });
      });
    });
    function done() {
      var sc = S.scoreNBack(api.trials), nt = sc.hits + sc.misses, nn = sc.false_alarms + sc.correct_rejections;
      clearStage(); big("Done");
      line("Hits: " + sc.hits + " of " + nt + " matches; misses: " + sc.misses + "; false alarms: " + sc.false_alarms + " of " + nn +
           " other letters. d\u2032 = " + fmt(sc.d_prime) + " (log-linear correction: +0.5 to each count, +1 to each total).", "wmb-score");
      line("A demonstration of what updating feels like, not a capacity score: " + len + " letters are far too few to measure you.", "wmb-note");
      if (O.reference) line(O.reference, "wmb-ref");
      finishRun({ d_prime: sc.d_prime, hits: sc.hits, misses: sc.misses, false_alarms: sc.false_alarms, stream_seed: streamSeed });
    }
  }

  var RUN = { span: runSpan, change: runChange, offload: runOffload, nback: runNBack }[P.task];
  startBtn.addEventListener("click", function () {
    if (api.phase !== "idle" && api.phase !== "done") return;
    startBtn.disabled = true; api.durations = []; api.result = null;
    RUN();
  });
  big(O.ready || "Press Start");
  showHistory();
  api.ready = true;
})(__WMB_ARGS__);
