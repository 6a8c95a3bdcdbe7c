/* wmbook attention explorer (wmbook/explorer.py).
   One function call, no globals, nothing fetched. Python fills in the call's arguments
   (last line): the view's root id and its data (JSON, with < > & escaped).
   Tokens are text, never markup: they go into the page with textContent only.
   Weights: log w as float16 little-endian base64, (layer, head, query, key) order;
   values <= -65504 (LOG_ZERO) are exact zeros. Shown weights are
   softmax(log w / temperature) over the keys the masks allow in each row. */
(function (ROOT_ID, P) {
  "use strict";
  var SCRIPT = document.currentScript;
  var LOG_ZERO = -65504;
  var ROW_H = 20;      // css px per token in the token view
  var LINES_W = 120;   // css px between the query and the key column

  // ------------------------------------------------------------------ data
  function f16(h) {    // one IEEE 754 half-precision number from its 16 bits
    var sign = (h & 0x8000) ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
    if (e === 0) return sign * f * 5.960464477539063e-8;          // subnormal: f * 2^-24
    if (e === 31) return f ? NaN : sign * Infinity;
    return sign * (1 + f / 1024) * Math.pow(2, e - 15);
  }
  function decodeF16(b64) {
    var s = atob(b64), n = s.length >> 1, out = new Float32Array(n);
    for (var k = 0; k < n; k++) out[k] = f16(s.charCodeAt(2 * k) | (s.charCodeAt(2 * k + 1) << 8));
    return out;
  }

  // ------------------------------------------------------------------ helpers
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function shown(tok) {  // a token as visible text (whitespace made visible)
    if (tok === "") return "\u2205";
    return tok.replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t");
  }
  function quoted(tok) { return "'" + shown(tok) + "'"; }
  function fmt(w) { return w.toFixed(4); }
  function short(w) { return w >= 0.995 ? "1.0" : w.toFixed(2).replace(/^0/, ""); }
  var probe = null;
  function parseColor(css, fallback) {  // any CSS colour -> [r, g, b, a] (0..255)
    if (!probe) { probe = document.createElement("canvas"); probe.width = probe.height = 1; }
    var c = probe.getContext("2d", { willReadFrequently: true });
    c.clearRect(0, 0, 1, 1);
    c.fillStyle = fallback;
    if (css) c.fillStyle = css;
    c.fillRect(0, 0, 1, 1);
    var d = c.getImageData(0, 0, 1, 1).data;
    return [d[0], d[1], d[2], d[3]];
  }
  function lum(c) { return (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255; }
  function mix(a, b, t) { return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]; }
  function rgb(c, alpha) {
    var s = Math.round(c[0]) + "," + Math.round(c[1]) + "," + Math.round(c[2]);
    return alpha === undefined ? "rgb(" + s + ")" : "rgba(" + s + "," + alpha + ")";
  }
  function fitText(ctx, s, maxW) {
    if (ctx.measureText(s).width <= maxW) return s;
    while (s.length > 1 && ctx.measureText(s + "\u2026").width > maxW) s = s.slice(0, -1);
    return s + "\u2026";
  }
  function sizeCanvas(cv, w, h) {
    var dpr = window.devicePixelRatio || 1;
    var W = Math.max(1, Math.round(w * dpr)), H = Math.max(1, Math.round(h * dpr));
    if (cv.width !== W) cv.width = W;
    if (cv.height !== H) cv.height = H;
    cv.style.width = w + "px";
    cv.style.height = h + "px";
    return dpr;
  }

  // ------------------------------------------------------------------ find our root
  function findRoot() {
    var prev = SCRIPT && SCRIPT.previousElementSibling;
    if (prev && prev.id === ROOT_ID && !prev.getAttribute("data-wmb-ready")) return prev;
    var all = document.querySelectorAll('[id="' + ROOT_ID + '"]');
    for (var k = 0; k < all.length; k++) if (!all[k].getAttribute("data-wmb-ready")) return all[k];
    return null;
  }
  function start(tries) {
    var root = findRoot();
    if (!root) {  // some hosts run the script before the HTML is attached
      if (tries < 100) setTimeout(function () { start(tries + 1); }, 50);
      return;
    }
    root.setAttribute("data-wmb-ready", "1");
    try {
      init(root);
    } catch (err) {
      var body = root.querySelector(".wmb-body") || root;
      body.textContent = "";
      body.appendChild(el("p", "wmb-error", "The attention explorer failed: " + (err && err.message ? err.message : err)));
      throw err;
    }
  }

  // ------------------------------------------------------------------ the explorer
  function init(root) {
    var X = P.examples, O = P.options;
    var st = {
      ex: 0, layer: O.layer, head: O.head, mode: O.mode, temp: O.temperature,
      causal: O.causal, hideSpecial: O.hideSpecial, hidePad: O.hidePadding,
      hover: null, pin: null, gridHover: -1
    };
    var logw = {}, cache = {}, cacheKey = "", masks = null, theme = null;
    var gridBase = null, gridKey = "", gridPos = [], gridGeo = null;
    var heatBase = null, heatKey = "", heatGeo = null;

    // ---- layout
    var sub = root.querySelector(".wmb-sub");
    var body = root.querySelector(".wmb-body");
    body.textContent = "";
    var controls = el("div", "wmb-controls");
    body.appendChild(controls);
    function control(label, input, id, after) {
      var lab = el("label", "wmb-ctl");
      input.id = ROOT_ID + "-" + id;
      lab.htmlFor = input.id;
      if (after) { lab.appendChild(input); lab.appendChild(el("span", "wmb-lab", label)); }
      else { lab.appendChild(el("span", "wmb-lab", label)); lab.appendChild(input); }
      controls.appendChild(lab);
      return lab;
    }
    function select(options) {
      var s = el("select");
      options.forEach(function (o) { var op = el("option", null, o[1]); op.value = String(o[0]); s.appendChild(op); });
      return s;
    }
    var exSel = select(X.map(function (e, k) { return [k, e.name]; }));
    var exLab = control("example", exSel, "example");
    if (X.length < 2) exLab.hidden = true;
    var layerSel = el("select"), headSel = el("select");
    control("layer", layerSel, "layer");
    control("head", headSel, "head");
    var modeSel = select([["head", "selected head"], ["layer", "all heads of this layer"], ["all", "all layers \u00d7 heads"]]);
    control("show", modeSel, "mode");
    var tempIn = el("input");
    tempIn.type = "range"; tempIn.min = "-1"; tempIn.max = "1"; tempIn.step = "0.01";
    tempIn.setAttribute("aria-label", "temperature (log scale, 0.1 to 10)");
    var tempLab = control("temperature", tempIn, "temperature");
    var tempOut = el("output");
    tempLab.appendChild(tempOut);
    var tempReset = el("button", null, "1");
    tempReset.type = "button";
    tempReset.title = "reset the temperature to 1";
    tempLab.appendChild(tempReset);
    var causalIn = el("input"), specialIn = el("input"), padIn = el("input");
    causalIn.type = specialIn.type = padIn.type = "checkbox";
    control("causal", causalIn, "causal", true);
    var specialLab = control("hide special tokens", specialIn, "special", true);
    var padLab = control("hide padding", padIn, "padding", true);

    var gridWrap = el("div", "wmb-gridwrap");
    var gridCv = el("canvas", "wmb-grid");
    gridCv.setAttribute("role", "img");
    gridWrap.appendChild(gridCv);
    body.appendChild(gridWrap);

    var panel = el("div", "wmb-panel");
    body.appendChild(panel);
    var tokView = el("div", "wmb-tokview");
    var colhead = el("div", "wmb-colhead");
    colhead.appendChild(el("span", null, "query (reads) \u2192"));
    colhead.appendChild(el("span", null, "\u2192 key (is read)"));
    tokView.appendChild(colhead);
    var scroll = el("div", "wmb-scroll");
    var cols = el("div", "wmb-cols");
    var qCol = el("div", "wmb-col wmb-q"), kCol = el("div", "wmb-col wmb-k");
    var linesCv = el("canvas", "wmb-lines");
    cols.appendChild(qCol); cols.appendChild(linesCv); cols.appendChild(kCol);
    scroll.appendChild(cols);
    tokView.appendChild(scroll);
    panel.appendChild(tokView);
    var heatWrap = el("div", "wmb-heatwrap");
    var heatCv = el("canvas", "wmb-heat");
    heatCv.setAttribute("role", "img");
    heatWrap.appendChild(heatCv);
    panel.appendChild(heatWrap);

    var legend = el("div", "wmb-legend");
    legend.appendChild(el("span", null, "weight"));
    legend.appendChild(el("span", null, "0"));
    var legendCv = el("canvas");
    legend.appendChild(legendCv);
    legend.appendChild(el("span", null, "1"));
    legend.appendChild(el("span", "wmb-swatch"));
    legend.appendChild(el("span", null, "masked"));
    body.appendChild(legend);
    var readout = el("div", "wmb-readout");
    readout.id = ROOT_ID + "-readout";
    readout.setAttribute("aria-live", "polite");
    body.appendChild(readout);

    // ---- theme: colours resolved from the CSS variables
    function getTheme() {
      var cs = getComputedStyle(root);
      var v = function (name) { return cs.getPropertyValue(name).trim(); };
      var fg = parseColor(v("--wmb-fg") || cs.color, "#1f2328");
      var bg = parseColor(v("--wmb-bg"), "rgba(0,0,0,0)");
      var dark = bg[3] < 128 ? lum(fg) > 0.5 : lum(bg) < 0.45;
      if (root.classList.contains("wmb-dark") !== dark) root.classList.toggle("wmb-dark", dark);
      cs = getComputedStyle(root);
      if (bg[3] < 128) bg = dark ? [13, 17, 23, 255] : [255, 255, 255, 255];
      var mid = parseColor(v("--wmb-heat-mid"), dark ? "#1f6feb" : "#6baed6");
      var hi = parseColor(v("--wmb-heat-hi"), dark ? "#d2e9ff" : "#08306b");
      var lut = [];
      for (var k = 0; k < 256; k++) {
        var t = k / 255;
        lut.push(t < 0.5 ? mix(bg, mid, t * 2) : mix(mid, hi, (t - 0.5) * 2));
      }
      var th = {
        fg: fg, bg: bg, dark: dark, lut: lut,
        accent: parseColor(v("--wmb-accent"), dark ? "#58a6ff" : "#0b5cd5"),
        masked: parseColor(v("--wmb-masked"), dark ? "#30363d" : "#d5d9de")
      };
      th.key = [fg, bg, th.accent, th.masked, mid, hi].join(";");
      return th;
    }
    function color(w) { return theme.lut[Math.max(0, Math.min(255, Math.round(w * 255)))]; }

    // ---- weights
    function E() { return X[st.ex]; }
    function settingsKey() { return [st.ex, st.temp, st.causal, st.hideSpecial, st.hidePad].join("|"); }
    function computeMasks() {
      var e = E(), T = e.T, q = new Uint8Array(T), k = new Uint8Array(T), i;
      for (i = 0; i < T; i++) {
        var real = !e.real || e.real.charAt(i) === "1";
        q[i] = (real || !st.hidePad) ? 1 : 0;
        k[i] = q[i];
      }
      if (st.hideSpecial) e.special.forEach(function (j) { k[j] = 0; });
      return { q: q, k: k };
    }
    function allowed(i, j) { return masks.q[i] && masks.k[j] && !(st.causal && j > i); }
    // The weights of one head under the current temperature and masks: -1 marks a masked cell.
    function headWeights(l, h) {
      var key = settingsKey();
      if (key !== cacheKey) { cache = {}; cacheKey = key; masks = computeMasks(); }
      var id = l * E().H + h;
      if (cache[id]) return cache[id];
      var e = E(), T = e.T;
      if (!logw[st.ex]) logw[st.ex] = decodeF16(e.logw);
      var lw = logw[st.ex], off = (l * e.H + h) * T * T, out = new Float32Array(T * T), inv = 1 / st.temp;
      for (var i = 0; i < T; i++) {
        var r = i * T, mx = -Infinity, j, v, s = 0;
        for (j = 0; j < T; j++) {
          v = lw[off + r + j];
          if (allowed(i, j) && v > LOG_ZERO && v > mx) mx = v;
        }
        for (j = 0; j < T; j++) {
          if (!allowed(i, j)) { out[r + j] = -1; continue; }
          v = lw[off + r + j];
          v = v > LOG_ZERO ? Math.exp((v - mx) * inv) : 0;
          out[r + j] = v;
          s += v;
        }
        if (s > 0) for (j = 0; j < T; j++) if (out[r + j] > 0) out[r + j] /= s;
      }
      cache[id] = out;
      return out;
    }

    // ---- selection: hover (transient) and pin (click); a pinned query + a hovered key make a cell
    function selection() {
      var p = st.pin, h = st.hover;
      if (p && h) {
        if (p.q >= 0 && p.k < 0 && h.k >= 0 && h.q < 0) return { q: p.q, k: h.k };
        if (p.k >= 0 && p.q < 0 && h.q >= 0 && h.k < 0) return { q: h.q, k: p.k };
      }
      return p || h || { q: -1, k: -1 };
    }
    function same(a, b) { return a && b && a.q === b.q && a.k === b.k; }
    function togglePin(s) { st.pin = same(st.pin, s) ? null : s; update(); }

    // ---- token view
    var qToks = [], kToks = [];
    function makeTok(i, tok, isQuery) {
      var d = el("div", "wmb-tok"), txt = el("span", "wmb-txt", shown(tok)), val = el("span", "wmb-val");
      if (isQuery) { d.appendChild(val); d.appendChild(txt); } else { d.appendChild(txt); d.appendChild(val); }
      d.setAttribute("data-i", String(i));
      d.setAttribute("title", tok);
      d.tabIndex = 0;
      d.setAttribute("role", "button");
      d._val = val;
      return d;
    }
    function buildTokens() {
      var e = E();
      qCol.textContent = ""; kCol.textContent = "";
      qToks = []; kToks = [];
      e.tokens.forEach(function (tok, i) {
        var a = makeTok(i, tok, true), b = makeTok(i, tok, false);
        qToks.push(a); kToks.push(b); qCol.appendChild(a); kCol.appendChild(b);
      });
      sizeCanvas(linesCv, LINES_W, e.T * ROW_H);
    }
    function tokEvents(col, kind) {
      function target(ev) {
        var t = ev.target && ev.target.closest ? ev.target.closest(".wmb-tok") : null;
        return t && col.contains(t) ? +t.getAttribute("data-i") : -1;
      }
      function sel(i) { return kind === "q" ? { q: i, k: -1 } : { q: -1, k: i }; }
      col.addEventListener("mouseover", function (ev) {
        var i = target(ev);
        if (i >= 0 && !same(st.hover, sel(i))) { st.hover = sel(i); update(); }
      });
      col.addEventListener("mouseleave", function () { if (st.hover) { st.hover = null; update(); } });
      col.addEventListener("click", function (ev) { var i = target(ev); if (i >= 0) togglePin(sel(i)); });
      col.addEventListener("keydown", function (ev) {
        var i = target(ev);
        if (i >= 0 && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); togglePin(sel(i)); }
      });
      col.addEventListener("focusin", function (ev) { var i = target(ev); if (i >= 0) { st.hover = sel(i); update(); } });
    }
    tokEvents(qCol, "q");
    tokEvents(kCol, "k");

    function drawTokens(W, s) {
      var e = E(), T = e.T, dpr = window.devicePixelRatio || 1, i, j, w;
      var ctx = linesCv.getContext("2d");
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, linesCv.width, linesCv.height);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.strokeStyle = rgb(theme.accent);
      ctx.lineWidth = 2;
      function line(a, b, alpha) {
        ctx.globalAlpha = Math.min(1, alpha);
        ctx.beginPath();
        ctx.moveTo(0, (a + 0.5) * ROW_H);
        ctx.lineTo(LINES_W, (b + 0.5) * ROW_H);
        ctx.stroke();
      }
      for (i = 0; i < T; i++) {
        var pad = !masks.q[i], hidK = !masks.k[i];  // padding (when hidden) / a hidden special token
        var qc = "wmb-tok" + (pad ? " wmb-pad" : ""), kc = "wmb-tok" + (pad ? " wmb-pad" : hidK ? " wmb-off" : "");
        var qBg = "", kBg = "", qFg = "", kFg = "", qVal = "", kVal = "";
        if (s.q >= 0) {
          w = W[s.q * T + i];
          if (w >= 0) { var c = color(w); kBg = rgb(c); kFg = lum(c) < 0.5 ? "#fff" : "#000"; kVal = short(w); }
          else if (!pad && !hidK) kc += " wmb-off";
          if (i === s.q) qc += (st.pin && st.pin.q === i) ? " wmb-pin" : " wmb-sel";
          if (i === s.k) kc += " wmb-sel";
        } else if (s.k >= 0) {
          w = W[i * T + s.k];
          if (w >= 0) { var c2 = color(w); qBg = rgb(c2); qFg = lum(c2) < 0.5 ? "#fff" : "#000"; qVal = short(w); }
          if (i === s.k) kc += (st.pin && st.pin.k === i) ? " wmb-pin" : " wmb-sel";
        }
        if (qToks[i].className !== qc) qToks[i].className = qc;
        if (kToks[i].className !== kc) kToks[i].className = kc;
        qToks[i].style.backgroundColor = qBg; qToks[i].style.color = qFg; qToks[i]._val.textContent = qVal;
        kToks[i].style.backgroundColor = kBg; kToks[i].style.color = kFg; kToks[i]._val.textContent = kVal;
      }
      if (s.q >= 0) {
        for (j = 0; j < T; j++) { w = W[s.q * T + j]; if (w > 0.003) line(s.q, j, w); }
        if (s.k >= 0 && W[s.q * T + s.k] >= 0) { ctx.lineWidth = 4; line(s.q, s.k, Math.max(0.35, W[s.q * T + s.k])); }
      } else if (s.k >= 0) {
        for (i = 0; i < T; i++) { w = W[i * T + s.k]; if (w > 0.003) line(i, s.k, w); }
      } else {
        for (i = 0; i < T; i++) for (j = 0; j < T; j++) { w = W[i * T + j]; if (w > 0.01) line(i, j, w * 0.6); }
      }
      ctx.globalAlpha = 1;
    }

    // ---- heatmap of the selected head
    function heatGeometry() {
      var e = E(), T = e.T, cell = Math.max(2, Math.min(22, Math.floor(400 / T)));
      var labels = cell >= 8, font = Math.min(12, cell - 1) + "px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
      var margin = 6;
      if (labels) {
        var ctx = heatCv.getContext("2d");
        ctx.font = font;
        var wmax = 0;
        e.tokens.forEach(function (t) { wmax = Math.max(wmax, ctx.measureText(shown(t)).width); });
        margin = Math.min(96, Math.ceil(wmax) + 10);
      }
      return { T: T, cell: cell, labels: labels, font: font, ml: margin, mt: margin, w: margin + T * cell + 4, h: margin + T * cell + 4 };
    }
    function drawHeatBase(W) {
      var g = heatGeometry(), e = E(), T = g.T, i, j, w;
      heatGeo = g;
      heatCv.setAttribute("data-geo", g.ml + "," + g.mt + "," + g.cell);  // for tests: margins and cell size
      var dpr = sizeCanvas(heatCv, g.w, g.h);
      if (!heatBase) heatBase = document.createElement("canvas");
      heatBase.width = heatCv.width; heatBase.height = heatCv.height;
      var ctx = heatBase.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      var masked = rgb(theme.masked);
      for (i = 0; i < T; i++) for (j = 0; j < T; j++) {
        w = W[i * T + j];
        ctx.fillStyle = w < 0 ? masked : rgb(color(w));
        ctx.fillRect(g.ml + j * g.cell, g.mt + i * g.cell, g.cell, g.cell);
      }
      ctx.strokeStyle = rgb(theme.fg, 0.35);
      ctx.lineWidth = 1;
      ctx.strokeRect(g.ml - 0.5, g.mt - 0.5, T * g.cell + 1, T * g.cell + 1);
      ctx.fillStyle = rgb(theme.fg);
      if (g.labels) {
        ctx.font = g.font;
        ctx.textBaseline = "middle";
        ctx.textAlign = "right";
        for (i = 0; i < T; i++) {
          ctx.globalAlpha = masks.q[i] ? 1 : 0.35;
          ctx.fillText(fitText(ctx, shown(e.tokens[i]), g.ml - 8), g.ml - 4, g.mt + (i + 0.5) * g.cell);
        }
        ctx.textAlign = "left";
        for (j = 0; j < T; j++) {
          ctx.save();
          ctx.globalAlpha = masks.k[j] ? 1 : 0.35;
          ctx.translate(g.ml + (j + 0.5) * g.cell, g.mt - 4);
          ctx.rotate(-Math.PI / 2);
          ctx.fillText(fitText(ctx, shown(e.tokens[j]), g.mt - 8), 0, 0);
          ctx.restore();
        }
        ctx.globalAlpha = 1;
      }
      ctx.font = "10px sans-serif";
      ctx.globalAlpha = 0.6;
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      if (g.ml >= 40) { ctx.fillText("query \u2193", 2, 2); ctx.fillText("key \u2192", 2, 14); }
      ctx.globalAlpha = 1;
    }
    function drawHeat(W, s) {
      var key = [settingsKey(), st.layer, st.head, theme.key, window.devicePixelRatio || 1].join("#");
      if (key !== heatKey || !heatBase) { drawHeatBase(W); heatKey = key; }
      var g = heatGeo, dpr = window.devicePixelRatio || 1, ctx = heatCv.getContext("2d");
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, heatCv.width, heatCv.height);
      ctx.drawImage(heatBase, 0, 0);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.strokeStyle = rgb(theme.accent);
      ctx.lineWidth = 2;
      var n = g.T * g.cell;
      if (s.q >= 0) ctx.strokeRect(g.ml - 1, g.mt + s.q * g.cell - 1, n + 2, g.cell + 2);
      if (s.k >= 0) ctx.strokeRect(g.ml + s.k * g.cell - 1, g.mt - 1, g.cell + 2, n + 2);
      if (s.q >= 0 && s.k >= 0) {
        ctx.strokeStyle = rgb(theme.fg);
        ctx.strokeRect(g.ml + s.k * g.cell - 2, g.mt + s.q * g.cell - 2, g.cell + 4, g.cell + 4);
      }
      heatCv.setAttribute("aria-label", "attention heatmap, layer " + st.layer + ", head " + st.head);
    }
    function heatCell(ev) {
      var g = heatGeo, rect = heatCv.getBoundingClientRect();
      if (!g) return null;
      var x = ev.clientX - rect.left - g.ml, y = ev.clientY - rect.top - g.mt;
      var j = Math.floor(x / g.cell), i = Math.floor(y / g.cell);
      return (i >= 0 && j >= 0 && i < g.T && j < g.T) ? { q: i, k: j } : null;
    }
    heatCv.addEventListener("mousemove", function (ev) {
      var c = heatCell(ev);
      if (!same(c, st.hover) && (c || st.hover)) { st.hover = c; update(); }
    });
    heatCv.addEventListener("mouseleave", function () { if (st.hover) { st.hover = null; update(); } });
    heatCv.addEventListener("click", function (ev) { var c = heatCell(ev); if (c) togglePin(c); });

    // ---- grid of heads (one layer, or every layer)
    function gridLayout() {
      var e = E(), all = st.mode === "all", thumb = all ? (e.L * e.H <= 48 ? 80 : 64) : 96, gap = 8;
      var ml = all ? 30 : 4, mt = all ? 16 : 4, lab = all ? 0 : 15;  // room for the selection outline
      var avail = Math.max(200, (root.clientWidth || 900) - 30);
      var cols = all ? e.H : Math.max(1, Math.min(e.H, Math.floor((avail - ml) / (thumb + gap))));
      var rows = all ? e.L : Math.ceil(e.H / cols);
      var pos = [];
      for (var r = 0; r < rows; r++) for (var c = 0; c < cols; c++) {
        var n = all ? null : r * cols + c;
        if (!all && n >= e.H) break;
        pos.push({ l: all ? r : st.layer, h: all ? c : n, x: ml + c * (thumb + gap), y: mt + r * (thumb + gap + lab) });
      }
      return { thumb: thumb, gap: gap, ml: ml, mt: mt, lab: lab, pos: pos, all: all,
               w: ml + cols * (thumb + gap), h: mt + rows * (thumb + gap + lab) };
    }
    function drawGridBase() {
      var g = gridLayout(), e = E(), T = e.T, dpr = sizeCanvas(gridCv, g.w, g.h);
      gridGeo = g; gridPos = g.pos;
      if (!gridBase) gridBase = document.createElement("canvas");
      gridBase.width = gridCv.width; gridBase.height = gridCv.height;
      var ctx = gridBase.getContext("2d");
      var tp = Math.max(1, Math.round(g.thumb * dpr)), img = ctx.createImageData(tp, tp), d = img.data;
      var idx = new Int32Array(tp);
      for (var p = 0; p < tp; p++) idx[p] = Math.min(T - 1, Math.floor(p * T / tp));
      var masked = theme.masked, lut = theme.lut;
      g.pos.forEach(function (pp) {
        var W = headWeights(pp.l, pp.h);
        for (var py = 0; py < tp; py++) {
          var row = idx[py] * T, o = py * tp * 4;
          for (var px = 0; px < tp; px++, o += 4) {
            var w = W[row + idx[px]], c = w < 0 ? masked : lut[Math.max(0, Math.min(255, Math.round(w * 255)))];
            d[o] = c[0]; d[o + 1] = c[1]; d[o + 2] = c[2]; d[o + 3] = 255;
          }
        }
        ctx.putImageData(img, Math.round(pp.x * dpr), Math.round(pp.y * dpr));
      });
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.fillStyle = rgb(theme.fg);
      ctx.font = "10px sans-serif";
      ctx.textBaseline = "top";
      ctx.textAlign = "center";
      if (g.all) {
        for (var h = 0; h < e.H; h++) ctx.fillText("h" + h, g.ml + h * (g.thumb + g.gap) + g.thumb / 2, 2);
        ctx.textAlign = "right";
        ctx.textBaseline = "middle";
        for (var l = 0; l < e.L; l++) ctx.fillText("L" + l, g.ml - 6, g.mt + l * (g.thumb + g.gap) + g.thumb / 2);
      } else {
        g.pos.forEach(function (pp) { ctx.fillText("head " + pp.h, pp.x + g.thumb / 2, pp.y + g.thumb + 2); });
      }
    }
    function drawGrid(s) {
      if (st.mode === "head") { gridWrap.hidden = true; return; }
      gridWrap.hidden = false;
      var key = [settingsKey(), st.mode, st.mode === "layer" ? st.layer : "", theme.key, root.clientWidth, window.devicePixelRatio || 1].join("#");
      if (key !== gridKey || !gridBase) { drawGridBase(); gridKey = key; }
      var g = gridGeo, dpr = window.devicePixelRatio || 1, ctx = gridCv.getContext("2d"), T = E().T;
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, gridCv.width, gridCv.height);
      ctx.drawImage(gridBase, 0, 0);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      gridPos.forEach(function (pp, n) {
        var u = g.thumb / T;
        ctx.strokeStyle = rgb(theme.accent, 0.75);
        ctx.lineWidth = 1;
        if (s.q >= 0) ctx.strokeRect(pp.x, pp.y + s.q * u, g.thumb, Math.max(1, u));
        if (s.k >= 0) ctx.strokeRect(pp.x + s.k * u, pp.y, Math.max(1, u), g.thumb);
        if (pp.l === st.layer && pp.h === st.head) {
          ctx.strokeStyle = rgb(theme.accent); ctx.lineWidth = 3;
          ctx.strokeRect(pp.x - 2.5, pp.y - 2.5, g.thumb + 5, g.thumb + 5);
        } else if (n === st.gridHover) {
          ctx.strokeStyle = rgb(theme.fg, 0.7); ctx.lineWidth = 1;
          ctx.strokeRect(pp.x - 1.5, pp.y - 1.5, g.thumb + 3, g.thumb + 3);
        }
      });
      gridCv.setAttribute("aria-label", st.mode === "all" ? "every layer and head" : "every head of layer " + st.layer);
    }
    function gridIndex(ev) {
      var g = gridGeo, rect = gridCv.getBoundingClientRect();
      if (!g) return -1;
      var x = ev.clientX - rect.left, y = ev.clientY - rect.top;
      for (var n = 0; n < gridPos.length; n++) {
        var p = gridPos[n];
        if (x >= p.x && x < p.x + g.thumb && y >= p.y && y < p.y + g.thumb) return n;
      }
      return -1;
    }
    gridCv.addEventListener("mousemove", function (ev) {
      var n = gridIndex(ev);
      if (n !== st.gridHover) { st.gridHover = n; update(); }
    });
    gridCv.addEventListener("mouseleave", function () { if (st.gridHover >= 0) { st.gridHover = -1; update(); } });
    gridCv.addEventListener("click", function (ev) {
      var n = gridIndex(ev);
      if (n < 0) return;
      st.layer = gridPos[n].l; st.head = gridPos[n].h;
      syncControls();
      update();
    });

    // ---- legend and readout
    function drawLegend() {
      var dpr = sizeCanvas(legendCv, 160, 12), ctx = legendCv.getContext("2d");
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      for (var x = 0; x < legendCv.width; x++) {
        ctx.fillStyle = rgb(color(x / Math.max(1, legendCv.width - 1)));
        ctx.fillRect(x, 0, 1, legendCv.height);
      }
      return dpr;
    }
    function setReadout(main, more) {
      readout.textContent = "";
      readout.appendChild(el("span", "wmb-main", main));
      if (more) readout.appendChild(el("span", "wmb-more", "  \u00b7 " + more));
    }
    function why(i, j) {
      if (!masks.q[i]) return "query is padding";
      if (!masks.k[j]) return E().special.indexOf(j) >= 0 && st.hideSpecial ? "special token hidden" : "key is padding";
      return "causal mask (key after query)";
    }
    function topOf(vals, exclude) {
      var idx = [];
      for (var k = 0; k < vals.length; k++) if (vals[k] >= 0 && k !== exclude) idx.push(k);
      idx.sort(function (a, b) { return vals[b] - vals[a]; });
      return idx;
    }
    function drawReadout(W, s) {
      var e = E(), T = e.T, toks = e.tokens, where = "layer " + st.layer + ", head " + st.head +
        (st.temp !== 1 ? ", temperature " + st.temp.toFixed(2) : "");
      if (st.gridHover >= 0 && gridPos[st.gridHover]) {
        var gp = gridPos[st.gridHover];
        setReadout("layer " + gp.l + ", head " + gp.h, "click to show this head below");
        return;
      }
      var pinNote = st.pin ? "pinned; click again to unpin" : "click to pin";
      if (s.q >= 0 && s.k >= 0) {
        var w = W[s.q * T + s.k];
        setReadout("query " + quoted(toks[s.q]) + " \u2192 key " + quoted(toks[s.k]) + ": " + (w >= 0 ? fmt(w) : "masked (" + why(s.q, s.k) + ")"),
          "positions " + s.q + " \u2192 " + s.k + ", " + where + "; " + pinNote);
      } else if (s.q >= 0) {
        var row = Array.prototype.slice.call(W, s.q * T, s.q * T + T), top = topOf(row, -1);
        if (!top.length) { setReadout("query " + quoted(toks[s.q]) + ": every key is masked", where); return; }
        var rest = top.slice(1, 4).map(function (j) { return quoted(toks[j]) + " " + fmt(row[j]); }).join(", ");
        setReadout("query " + quoted(toks[s.q]) + " \u2192 key " + quoted(toks[top[0]]) + ": " + fmt(row[top[0]]),
          "its largest weight" + (rest ? "; then " + rest : "") + "; " + where + "; " + pinNote);
      } else if (s.k >= 0) {
        var col = [];
        for (var i = 0; i < T; i++) col.push(W[i * T + s.k]);
        var tk = topOf(col, -1).filter(function (i) { return col[i] > 0; });
        if (!tk.length) { setReadout("key " + quoted(toks[s.k]) + ": no query reads it", where + "; " + pinNote); return; }
        var more = tk.slice(1, 4).map(function (i) { return quoted(toks[i]) + " " + fmt(col[i]); }).join(", ");
        setReadout("query " + quoted(toks[tk[0]]) + " \u2192 key " + quoted(toks[s.k]) + ": " + fmt(col[tk[0]]),
          "the query that reads this key most" + (more ? "; then " + more : "") + "; " + where + "; " + pinNote);
      } else {
        setReadout("Hover or tap a token (or a heatmap cell) to see its weights; click to pin.",
          where + "; rows: queries (who reads), columns: keys (what is read)");
      }
    }

    // ---- controls
    function fillHeadLayer() {
      var e = E();
      st.layer = Math.min(st.layer, e.L - 1); st.head = Math.min(st.head, e.H - 1);
      layerSel.textContent = ""; headSel.textContent = "";
      for (var l = 0; l < e.L; l++) { var o = el("option", null, "layer " + l); o.value = String(l); layerSel.appendChild(o); }
      for (var h = 0; h < e.H; h++) { var o2 = el("option", null, "head " + h); o2.value = String(h); headSel.appendChild(o2); }
      var specials = e.special.map(function (j) { return e.tokens[j]; }).filter(function (t, k, a) { return a.indexOf(t) === k; });
      specialLab.lastChild.textContent = specials.length ? "hide " + specials.map(shown).join(" ") : "hide special tokens (none here)";
      specialIn.disabled = !specials.length;
      specialLab.classList.toggle("wmb-disabled", !specials.length);
      padIn.disabled = !e.real;
      padLab.classList.toggle("wmb-disabled", !e.real);
      padLab.lastChild.textContent = e.real ? "hide padding (" + (e.T - e.real.replace(/0/g, "").length) + " tokens)" : "hide padding (none here)";
      sub.textContent = e.L + " layers \u00d7 " + e.H + " heads \u00b7 " + e.T + " tokens" +
        (e.total > e.T ? " (of " + e.total + ")" : "") + (X.length > 1 ? " \u00b7 " + X.length + " examples" : "");
    }
    function syncControls() {
      exSel.value = String(st.ex); layerSel.value = String(st.layer); headSel.value = String(st.head);
      modeSel.value = st.mode;
      tempIn.value = String(Math.log(st.temp) / Math.LN10);
      tempOut.textContent = "\u00d7" + st.temp.toFixed(2);
      causalIn.checked = st.causal; specialIn.checked = st.hideSpecial; padIn.checked = st.hidePad;
    }
    function setExample(k) {
      st.ex = k; st.hover = null; st.pin = null; st.gridHover = -1;
      fillHeadLayer(); buildTokens(); syncControls();
    }
    exSel.addEventListener("change", function () { setExample(+exSel.value); update(); });
    layerSel.addEventListener("change", function () { st.layer = +layerSel.value; update(); });
    headSel.addEventListener("change", function () { st.head = +headSel.value; update(); });
    modeSel.addEventListener("change", function () { st.mode = modeSel.value; st.gridHover = -1; update(); });
    tempIn.addEventListener("input", function () {
      st.temp = Math.pow(10, +tempIn.value);
      if (Math.abs(st.temp - 1) < 0.012) st.temp = 1;
      tempOut.textContent = "\u00d7" + st.temp.toFixed(2);
      update();
    });
    tempReset.addEventListener("click", function () { st.temp = 1; syncControls(); update(); });
    causalIn.addEventListener("change", function () { st.causal = causalIn.checked; update(); });
    specialIn.addEventListener("change", function () { st.hideSpecial = specialIn.checked; update(); });
    padIn.addEventListener("change", function () { st.hidePad = padIn.checked; update(); });

    // ---- drawing everything
    function update() {
      if (!theme) theme = getTheme();
      var W = headWeights(st.layer, st.head), s = selection();
      drawTokens(W, s);
      drawHeat(W, s);
      drawGrid(s);
      drawReadout(W, s);
      root.setAttribute("data-wmb-sel", (s.q >= 0 ? "q" + s.q : "") + (s.k >= 0 ? "k" + s.k : ""));
      root.setAttribute("data-wmb-head", st.layer + ":" + st.head);
    }
    function retheme() {
      if (!root.isConnected) { stop(); return; }
      var old = theme && theme.key;
      theme = getTheme();
      if (theme.key !== old) { drawLegend(); update(); }
    }
    var observers = [];
    function stop() { observers.forEach(function (f) { f(); }); observers = []; }
    if (window.MutationObserver) {
      var mo = new MutationObserver(retheme), opts = { attributes: true, attributeFilter: ["class", "data-theme", "data-jp-theme-light", "theme", "style"] };
      mo.observe(document.documentElement, opts);
      if (document.body) mo.observe(document.body, opts);
      observers.push(function () { mo.disconnect(); });
    }
    if (window.matchMedia) {
      var mq = window.matchMedia("(prefers-color-scheme: dark)");
      if (mq.addEventListener) { mq.addEventListener("change", retheme); observers.push(function () { mq.removeEventListener("change", retheme); }); }
    }
    if (window.ResizeObserver) {
      var lastW = -1, ro = new ResizeObserver(function () {
        if (!root.isConnected) { stop(); return; }
        if (root.clientWidth !== lastW) { lastW = root.clientWidth; if (st.mode === "layer") update(); }
      });
      ro.observe(root);
      observers.push(function () { ro.disconnect(); });
    }

    st.ex = Math.max(0, Math.min(X.length - 1, O.example || 0));
    setExample(st.ex);
    theme = getTheme();
    drawLegend();
    update();
  }

  start(0);
})(__WMB_ARGS__);
