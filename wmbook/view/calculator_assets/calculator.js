/* wmbook compute calculator (page 9.1): training FLOPs, time, memory and KV cache from a model's shape.
 * Called once per fragment as wmbCalculator(uid, data); data = {presets: [{name, source, inputs}],
 * initial: preset name}. The formulas are those of wmbook/lab/compute.py (its Python twin; the book's
 * tests check that both give the same numbers). Nothing is fetched and nothing is stored. */
(function (uid, data) {
  "use strict";
  var root = document.getElementById(uid);
  if (!root || root.getAttribute("data-wmb-ready")) return;

  var PRECISION_BYTES = {fp32: 4, bf16: 2, fp16: 2};
  var ADAM_STATE_BYTES = {fp32: 8, bf16: 12, fp16: 12};
  var SECONDS_PER_DAY = 86400;

  function positiveInt(name, v) {
    if (!(v >= 1) || Math.floor(v) !== v) throw new Error(name + " must be a positive integer, got " + v);
  }
  /* The same outputs as wmbook.lab.compute.calculate(inputs); throws Error with a message on bad input. */
  function calculate(x) {
    var b = PRECISION_BYTES[x.precision];
    if (!b) throw new Error("precision must be fp32, bf16 or fp16, got " + x.precision);
    ["n_params", "n_tokens", "flops_per_second"].forEach(function (k) {
      if (!(isFinite(x[k]) && x[k] > 0)) throw new Error(k + " must be a positive number, got " + x[k]);
    });
    ["batch", "seq_len", "n_layers", "d_model", "n_heads", "vocab_size"].forEach(function (k) { positiveInt(k, x[k]); });
    if (!(x.n_kv_heads >= 0) || !(x.d_ff >= 0)) throw new Error("n_kv_heads and d_ff must be >= 0 (0: the default)");
    var nKv = x.n_kv_heads || x.n_heads;
    if (x.d_model % x.n_heads || x.n_heads % nKv)
      throw new Error("d_model (" + x.d_model + ") must be divisible by n_heads (" + x.n_heads + "), and n_heads by n_kv_heads (" + nKv + ")");
    var dFF = x.d_ff || 4 * x.d_model;
    var flops = 6.0 * x.n_params * x.n_tokens;
    var seconds = flops / x.flops_per_second;
    var weights = b * x.n_params, grads = b * x.n_params, opt = ADAM_STATE_BYTES[x.precision] * x.n_params;
    var attention = x.fused_attention ? 0 : x.n_heads * x.seq_len;
    var perToken = x.n_layers * (8 * x.d_model + 2 * dFF + attention) + 2 * x.d_model + 2 * x.vocab_size;
    var act = x.batch * x.seq_len * perToken * b;
    var dHead = Math.floor(x.d_model / x.n_heads);
    var kvToken = 2 * x.n_layers * nKv * dHead * b;
    return {training_flops: flops, training_seconds: seconds, training_days: seconds / SECONDS_PER_DAY,
            weights_bytes: weights, gradients_bytes: grads, optimizer_bytes: opt, activation_bytes: act,
            total_bytes: weights + grads + opt + act, peak_bytes: weights + grads + Math.max(act, opt),
            kv_bytes_per_token: kvToken, kv_bytes_at_seq_len: kvToken * x.seq_len * x.batch};
  }
  function formatBytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"], k = 0;
    while (n >= 1024 && k < units.length - 1) { n /= 1024; k++; }
    if (k === 0) return n.toFixed(0) + " B";
    var decimals = n > 0 ? Math.max(0, 2 - Math.floor(Math.log10(n))) : 0;
    return n.toFixed(decimals) + " " + units[k];
  }
  function formatDays(d) {
    return d >= 100 ? Math.round(d).toLocaleString("en-US") : d.toPrecision(3);
  }
  function formatInput(v) { /* 175000000000 -> "1.75e11": long numbers stay readable and parse back exactly */
    return Math.abs(v) >= 1e6 ? v.toExponential().replace("e+", "e") : String(v);
  }
  function formatNumber(n) { return n.toExponential(2).replace("e+", "e"); }
  function formatTime(s) {
    if (s < 120) return s.toPrecision(3) + " s";
    if (s < 2 * 3600) return (s / 60).toPrecision(3) + " min";
    if (s < 2 * SECONDS_PER_DAY) return (s / 3600).toPrecision(3) + " h";
    if (s < 2 * 365.25 * SECONDS_PER_DAY) return (s / SECONDS_PER_DAY).toPrecision(3) + " days";
    return (s / (365.25 * SECONDS_PER_DAY)).toPrecision(3) + " years";
  }
  window.wmbookCalc = {calculate: calculate, formatBytes: formatBytes, formatTime: formatTime, formatInput: formatInput};

  var FIELDS = [
    ["n_params", "parameters N", "number"], ["n_tokens", "training tokens D", "number"],
    ["flops_per_second", "throughput (FLOP/s, sustained)", "number"], ["precision", "precision", "precision"],
    ["batch", "batch (sequences)", "int"], ["seq_len", "sequence length T", "int"],
    ["n_layers", "layers L", "int"], ["d_model", "d_model", "int"], ["n_heads", "heads h", "int"],
    ["n_kv_heads", "key/value heads (0: = h)", "int"], ["d_ff", "d_ff (0: 4 d_model)", "int"],
    ["vocab_size", "vocabulary V", "int"], ["fused_attention", "fused attention (no T\u00d7T weights kept)", "bool"]];
  var OUT = [
    ["training_flops", "training compute 6ND (FLOPs)", formatNumber],
    ["training_seconds", "training time at this throughput", formatTime],
    ["training_days", "the same in days (at 1 PFLOP/s: petaflop/s-days)", formatDays],
    ["weights_bytes", "weights", formatBytes], ["gradients_bytes", "gradients", formatBytes],
    ["optimizer_bytes", "Adam state", formatBytes], ["activation_bytes", "activations (one batch)", formatBytes],
    ["total_bytes", "all of the above at once", formatBytes],
    ["peak_bytes", "step peak (activations freed before Adam's step)", formatBytes],
    ["kv_bytes_per_token", "KV cache per token", formatBytes],
    ["kv_bytes_at_seq_len", "KV cache for batch \u00d7 T tokens", formatBytes]];

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  var body = root.querySelector(".wmb-calc-body");
  body.textContent = "";
  var top = el("div", "wmb-calc-presets");
  top.appendChild(el("span", null, "Preset: "));
  var presetSel = el("select", "wmb-calc-preset");
  data.presets.forEach(function (p, i) {
    var o = el("option", null, p.name); o.value = String(i); presetSel.appendChild(o);
  });
  top.appendChild(presetSel);
  var sourceNote = el("span", "wmb-calc-source");
  top.appendChild(sourceNote);
  body.appendChild(top);

  var form = el("div", "wmb-calc-form"), inputs = {};
  FIELDS.forEach(function (f) {
    var label = el("label", "wmb-calc-field");
    label.appendChild(el("span", null, f[1]));
    var input;
    if (f[2] === "precision") {
      input = el("select");
      ["fp32", "bf16", "fp16"].forEach(function (p) { var o = el("option", null, p); o.value = p; input.appendChild(o); });
    } else if (f[2] === "bool") {
      input = el("input"); input.type = "checkbox";
    } else {
      input = el("input"); input.type = "text"; input.inputMode = "decimal"; input.spellcheck = false;
    }
    input.name = f[0];
    input.setAttribute("data-field", f[0]);
    inputs[f[0]] = input;
    label.appendChild(input);
    form.appendChild(label);
  });
  body.appendChild(form);
  var error = el("div", "wmb-calc-error");
  error.setAttribute("role", "alert");
  body.appendChild(error);
  var table = el("table", "wmb-calc-out"), cells = {};
  OUT.forEach(function (o) {
    var tr = el("tr");
    tr.appendChild(el("th", null, o[1]));
    var td = el("td"); td.setAttribute("data-key", o[0]);
    cells[o[0]] = td; tr.appendChild(td); table.appendChild(tr);
  });
  body.appendChild(table);
  body.appendChild(el("p", "wmb-calc-note",
    "Arithmetic, not a measurement: 6ND FLOPs; Adam's training state at 16 bytes per parameter; activations " +
    "counted for the book's GPT (page 9.1 checks each formula against measurements on this book's models)."));

  function read() {
    var x = {};
    FIELDS.forEach(function (f) {
      var v = inputs[f[0]];
      if (f[2] === "precision") x[f[0]] = v.value;
      else if (f[2] === "bool") x[f[0]] = v.checked;
      else x[f[0]] = v.value.trim() === "" ? NaN : Number(v.value.replace(/[,_\s]/g, ""));
    });
    return x;
  }
  function update() {
    var r;
    try { r = calculate(read()); } catch (e) {
      error.textContent = e.message;
      root.setAttribute("data-wmb-state", "error");
      OUT.forEach(function (o) { cells[o[0]].textContent = "\u2013"; cells[o[0]].removeAttribute("data-value"); });
      return;
    }
    error.textContent = "";
    root.setAttribute("data-wmb-state", "ok");
    OUT.forEach(function (o) {
      var td = cells[o[0]];
      td.textContent = o[2](r[o[0]]);
      td.setAttribute("data-value", String(r[o[0]]));
    });
    root.wmbResult = r;
  }
  function load(i) {
    var p = data.presets[i];
    FIELDS.forEach(function (f) {
      var v = p.inputs[f[0]], input = inputs[f[0]];
      if (f[2] === "bool") input.checked = !!v; else input.value = f[2] === "number" ? formatInput(v) : String(v);
    });
    sourceNote.textContent = p.source ? " (source: " + p.source + ")" : "";
    update();
  }
  presetSel.addEventListener("change", function () { load(Number(presetSel.value)); });
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  var start = Math.max(0, data.presets.map(function (p) { return p.name; }).indexOf(data.initial));
  presetSel.value = String(start);
  load(start);
  root.wmbCalc = {calculate: calculate, read: read, update: update, load: load};
  root.setAttribute("data-wmb-ready", "1");
})(__WMB_ARGS__);
