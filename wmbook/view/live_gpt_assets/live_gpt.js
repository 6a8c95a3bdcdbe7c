/* wmbook live character GPT (wmbook/view/live_gpt.py): the book's GPT run in the browser.
   One call per view; nothing global but the API on the view's root element (root.wmbLive).
   The forward pass is wmbook.nn.gpt.GPT's (pre-LN blocks, tanh-GELU, tied embeddings),
   with float32 storage and double-precision sums; the weights arrive as float16, base64. */
(function (ROOT_ID, ARGS) {
  "use strict";
  var root = document.getElementById(ROOT_ID);
  if (!root || root.wmbLive) return;
  // live_gpt.py wraps this script with EXPLORER: the attention explorer's script and CSS, or null
  var EX = typeof EXPLORER !== "undefined" ? EXPLORER : null;

  // ------------------------------------------------------------------ numbers
  var rng = wmbMulberry32;  // Mulberry32 (shared_assets/mulberry32.js, which live_gpt.py inlines in front)

  function float16Table() {
    var t = new Float32Array(65536);
    for (var h = 0; h < 65536; h++) {
      var e = (h >> 10) & 31, m = h & 1023, v;
      if (e === 0) v = m * Math.pow(2, -24);
      else if (e === 31) v = m ? NaN : Infinity;
      else v = (1 + m / 1024) * Math.pow(2, e - 15);
      t[h] = (h & 0x8000) ? -v : v;
    }
    return t;
  }

  var f32one = new Float32Array(1), u32one = new Uint32Array(f32one.buffer);
  function toFloat16(v) {  // IEEE half-precision bits of v, rounded to nearest even (as numpy's astype)
    f32one[0] = v;
    var x = u32one[0], sign = (x >>> 16) & 0x8000, e = (x >>> 23) & 0xff, m = x & 0x7fffff, r, rem, half;
    if (e === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
    var E = e - 112;  // e - 127 + 15
    if (E >= 31) return sign | 0x7c00;
    if (E <= 0) {  // subnormal half
      if (E < -10) return sign;
      m |= 0x800000;
      var shift = 14 - E;
      r = m >>> shift; rem = m & ((1 << shift) - 1); half = 1 << (shift - 1);
      if (rem > half || (rem === half && (r & 1))) r++;
      return sign | r;
    }
    r = sign | (E << 10) | (m >>> 13); rem = m & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) r++;  // a carry into the exponent is still right
    return r;
  }

  function decodeWeights(b64, count, out) {
    var bin = atob(b64);
    if (bin.length !== 2 * count) throw new Error("packed weights: expected " + 2 * count + " bytes, got " + bin.length);
    var table = float16Table();
    for (var i = 0, j = 0; i < count; i++, j += 2) out[i] = table[bin.charCodeAt(j) | (bin.charCodeAt(j + 1) << 8)];
    return out;
  }

  // y[yo + o] = b[o] + sum_i W[o, i] x[xo + i]  (W is nn.Linear's (out, in), row-major)
  function linear(W, b, x, xo, nIn, y, yo, nOut) {
    for (var o = 0; o < nOut; o++) {
      var r = o * nIn, s0 = 0, s1 = 0, s2 = 0, s3 = 0, i = 0;
      for (; i + 3 < nIn; i += 4) {
        s0 += W[r + i] * x[xo + i]; s1 += W[r + i + 1] * x[xo + i + 1];
        s2 += W[r + i + 2] * x[xo + i + 2]; s3 += W[r + i + 3] * x[xo + i + 3];
      }
      for (; i < nIn; i++) s0 += W[r + i] * x[xo + i];
      y[yo + o] = (b ? b[o] : 0) + ((s0 + s1) + (s2 + s3));
    }
  }

  function layerNorm(x, xo, g, b, eps, y, yo, n) {  // y[yo..] = LN(x[xo..]), biased variance as nn.LayerNorm
    var mean = 0, v = 0, i;
    for (i = 0; i < n; i++) mean += x[xo + i];
    mean /= n;
    for (i = 0; i < n; i++) { var d = x[xo + i] - mean; v += d * d; }
    var inv = 1 / Math.sqrt(v / n + eps);
    for (i = 0; i < n; i++) y[yo + i] = (x[xo + i] - mean) * inv * g[i] + b[i];
  }

  // One head of causal attention for one query: s[0..nk) = softmax_j(q . k_j / sqrt(dh)) over the
  // keys K[j d + off ..] (j < nk); with out, out[oo + c] = sum_j s[j] V[j d + off + c] for c < dh.
  function attend(Q, qo, K, V, d, off, dh, nk, s, acc, out, oo) {
    var j, c, max = -Infinity, sum = 0, scale = Math.sqrt(dh);
    for (j = 0; j < nk; j++) {
      var dot = 0, kj = j * d + off;
      for (c = 0; c < dh; c++) dot += Q[qo + c] * K[kj + c];
      var z = Math.fround(dot) / scale;
      s[j] = z;
      if (z > max) max = z;
    }
    for (j = 0; j < nk; j++) { var e = Math.exp(s[j] - max); s[j] = e; sum += e; }
    for (j = 0; j < nk; j++) s[j] /= sum;
    if (!out) return;
    for (c = 0; c < dh; c++) acc[c] = 0;
    for (j = 0; j < nk; j++) {
      var w = s[j], vj = j * d + off;
      for (c = 0; c < dh; c++) acc[c] += w * V[vj + c];
    }
    for (c = 0; c < dh; c++) out[oo + c] = acc[c];
  }

  var GELU_C = Math.sqrt(2 / Math.PI);
  function geluInPlace(x, n) {  // GELU, tanh approximation: 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3)))
    for (var i = 0; i < n; i++) { var u = x[i]; x[i] = 0.5 * u * (1 + Math.tanh(GELU_C * (u + 0.044715 * u * u * u))); }
  }

  // ------------------------------------------------------------------ the model
  function Model(payload) {
    if (payload.format !== "wmbook-live-gpt-1") throw new Error("unknown model format " + payload.format);
    var c = payload.config, total = 0, i;
    for (i = 0; i < payload.tensors.length; i++) {
      var t = payload.tensors[i], size = 1;
      for (var k = 0; k < t[1].length; k++) size *= t[1][k];
      total = Math.max(total, t[2] + size);
    }
    // Every array the forward pass touches lives in one WebAssembly memory when the browser runs
    // WebAssembly SIMD: the matrix products then run in the kernel of live_gpt.py (_matmul_wasm,
    // float32 sums); otherwise in the plain JavaScript below (double sums). Same results to ~1e-6.
    var d0 = c.d_model, f0 = c.d_ff, n0 = c.n_ctx, L0 = c.n_layers;
    // weights, zero biases, K and V per layer, the window's buffers, one position's, the logits; 4-float alignment
    var floats = total + Math.max(d0, f0, c.vocab_size) + n0 * d0 * (2 * L0 + 5) + n0 * f0 + 5 * d0 + f0 + c.vocab_size + 4 * (40 + 16 * L0);
    this.wasm = null; this.kernel = "js";
    var kernel = payload.kernel ? Uint8Array.from(atob(payload.kernel), function (ch) { return ch.charCodeAt(0); }) : null;
    try {
      if (kernel && typeof WebAssembly === "object" && WebAssembly.validate(kernel) && d0 % 4 === 0 && f0 % 4 === 0) {
        var memory = new WebAssembly.Memory({ initial: Math.ceil(4 * floats / 65536) + 1 });
        this.wasm = new WebAssembly.Instance(new WebAssembly.Module(kernel), { env: { mem: memory } }).exports;
        this.heap = new Float32Array(memory.buffer); this.kernel = "wasm";
      }
    } catch (err) { this.wasm = null; this.kernel = "js"; }
    var heap = this.heap, top = 0;
    this.alloc = function (n) {  // a float32 array in the WebAssembly memory (16-byte aligned), or a plain one
      if (!heap) return new Float32Array(n);
      var a = heap.subarray(top, top + n); top += Math.ceil(n / 4) * 4;
      if (top > heap.length) throw new Error("live GPT: WebAssembly memory too small");
      return a;
    };
    var all = decodeWeights(payload.weights, total, this.alloc(total)), w = {};
    this.zeros = this.alloc(Math.max(d0, f0, c.vocab_size));  // the bias of layers without one (the head too)
    payload.tensors.forEach(function (t) {
      var size = t[1].reduce(function (a, b) { return a * b; }, 1);
      w[t[0]] = all.subarray(t[2], t[2] + size);
    });
    this.cfg = c;
    this.V = c.vocab_size; this.d = c.d_model; this.H = c.n_heads; this.L = c.n_layers;
    this.dh = c.d_model / c.n_heads; this.dff = c.d_ff; this.nCtx = c.n_ctx; this.eps = c.layer_norm_eps;
    this.wte = w["wte.weight"]; this.wpe = w["wpe.weight"];
    this.head = c.tie_weights ? this.wte : w["lm_head.weight"];
    this.lnfG = w["ln_f.weight"]; this.lnfB = w["ln_f.bias"];
    this.layers = [];
    for (i = 0; i < this.L; i++) {
      var p = "blocks." + i + ".", get = function (n) { return w[p + n] || null; };
      this.layers.push({
        ln1G: get("ln_1.weight"), ln1B: get("ln_1.bias"), ln2G: get("ln_2.weight"), ln2B: get("ln_2.bias"),
        Wq: get("attn.W_q.weight"), bq: get("attn.W_q.bias"), Wk: get("attn.W_k.weight"), bk: get("attn.W_k.bias"),
        Wv: get("attn.W_v.weight"), bv: get("attn.W_v.bias"), Wo: get("attn.W_o.weight"), bo: get("attn.W_o.bias"),
        Win: get("mlp.W_in.weight"), bin: get("mlp.W_in.bias"), Wout: get("mlp.W_out.weight"), bout: get("mlp.W_out.bias"),
        K: this.alloc(this.nCtx * this.d), Vc: this.alloc(this.nCtx * this.d)
      });
    }
    var d = this.d;
    this.x = this.alloc(d); this.h = this.alloc(d); this.q = this.alloc(d);
    this.a = this.alloc(d); this.o = this.alloc(d); this.f = this.alloc(this.dff);
    this.scores = new Float64Array(this.nCtx); this.acc = new Float64Array(this.dh);
    this.len = 0;  // positions held in the KV cache
  }

  // One more position (token id `tok` at position this.len), reusing the cached keys and values.
  // wantLogits: return the next-token logits (else the last layer's W_o, MLP and the head are skipped);
  // rows (optional array): receives per layer, per head the attention weights of this query (Float32Array(len)).
  Model.prototype.step = function (tok, wantLogits, rows) {
    var d = this.d, dh = this.dh, H = this.H, pos = this.len, nk = pos + 1, i, l, h, j, c;
    if (pos >= this.nCtx) throw new Error("the KV cache is full (n_ctx = " + this.nCtx + ")");
    var x = this.x, hh = this.h, q = this.q, a = this.a, o = this.o, f = this.f, s = this.scores;
    for (i = 0; i < d; i++) x[i] = this.wte[tok * d + i] + this.wpe[pos * d + i];
    for (l = 0; l < this.L; l++) {
      var B = this.layers[l], K = B.K, Vc = B.Vc, lastOnly = !wantLogits && l === this.L - 1;
      layerNorm(x, 0, B.ln1G, B.ln1B, this.eps, hh, 0, d);
      this.mm(hh, 0, 1, d, B.Wq, B.bq, d, q, 0);
      this.mm(hh, 0, 1, d, B.Wk, B.bk, d, K, pos * d);
      this.mm(hh, 0, 1, d, B.Wv, B.bv, d, Vc, pos * d);
      var layerRows = rows ? [] : null;
      for (h = 0; h < H; h++) {
        attend(q, h * dh, K, Vc, d, h * dh, dh, nk, s, this.acc, lastOnly ? null : a, h * dh);
        if (layerRows) layerRows.push(new Float32Array(s.subarray(0, nk)));
      }
      if (rows) rows.push(layerRows);
      if (lastOnly) break;  // nothing after this layer's keys and values is needed
      this.mm(a, 0, 1, d, B.Wo, B.bo, d, o, 0);
      for (i = 0; i < d; i++) x[i] += o[i];
      layerNorm(x, 0, B.ln2G, B.ln2B, this.eps, hh, 0, d);
      this.mm(hh, 0, 1, d, B.Win, B.bin, this.dff, f, 0);
      geluInPlace(f, this.dff);
      this.mm(f, 0, 1, this.dff, B.Wout, B.bout, d, o, 0);
      for (i = 0; i < d; i++) x[i] += o[i];
    }
    this.len = pos + 1;
    if (!wantLogits) return null;
    layerNorm(x, 0, this.lnfG, this.lnfB, this.eps, hh, 0, d);
    return this.logits(hh, 0);
  };

  // Y (T, nOut) = X (T, nIn) W^T + b, four output features at a time: each weight row is read
  // once for all T positions (the window re-read is compute-bound, not memory-bound)
  function matmul(X, T, nIn, W, b, nOut, Y) {
    var o = 0, t, i, xo, s0, s1, s2, s3, r0, r1, r2, r3, xi;
    for (; o + 3 < nOut; o += 4) {
      r0 = o * nIn; r1 = r0 + nIn; r2 = r1 + nIn; r3 = r2 + nIn;
      for (t = 0; t < T; t++) {
        xo = t * nIn; s0 = 0; s1 = 0; s2 = 0; s3 = 0;
        for (i = 0; i < nIn; i++) {
          xi = X[xo + i];
          s0 += W[r0 + i] * xi; s1 += W[r1 + i] * xi; s2 += W[r2 + i] * xi; s3 += W[r3 + i] * xi;
        }
        var yo = t * nOut + o;
        if (b) { Y[yo] = b[o] + s0; Y[yo + 1] = b[o + 1] + s1; Y[yo + 2] = b[o + 2] + s2; Y[yo + 3] = b[o + 3] + s3; }
        else { Y[yo] = s0; Y[yo + 1] = s1; Y[yo + 2] = s2; Y[yo + 3] = s3; }
      }
    }
    for (; o < nOut; o++) {
      for (t = 0; t < T; t++) {
        s0 = 0; xo = t * nIn; r0 = o * nIn;
        for (i = 0; i < nIn; i++) s0 += W[r0 + i] * X[xo + i];
        Y[t * nOut + o] = (b ? b[o] : 0) + s0;
      }
    }
  }

  // Y[yo + t nOut + o] = b[o] + sum_i W[o, i] X[xo + t nIn + i] for t < T: the WebAssembly kernel
  // when it runs and the sizes are multiples of 4, else JavaScript.
  Model.prototype.mm = function (X, xo, T, nIn, W, b, nOut, Y, yo) {
    if (this.kernel === "wasm" && nIn % 4 === 0 && nOut % 4 === 0) {
      this.wasm.mm(X.byteOffset + 4 * xo, T, nIn, W.byteOffset, (b || this.zeros).byteOffset, nOut, Y.byteOffset + 4 * yo);
    } else if (T === 1) linear(W, b, X, xo, nIn, Y, yo, nOut);
    else matmul(xo ? X.subarray(xo) : X, T, nIn, W, b, nOut, yo ? Y.subarray(yo) : Y);
  };

  // logits = W_te h (tied) or W_lm h, for the final-normed h: a fresh Float32Array(V)
  Model.prototype.logits = function (h, ho) {
    if (!this.logitBuf) this.logitBuf = this.alloc(this.V);
    this.mm(h, ho, 1, this.d, this.head, null, this.V, this.logitBuf, 0);
    return this.logitBuf.slice(0, this.V);
  };

  // The whole window at once: ids at positions 0..T-1 into an empty cache (what a slide needs).
  // Returns the last position's logits; rows (optional array) receives, per position, what
  // step() gives for it. Same arithmetic as T calls of step(), up to the order of the sums.
  Model.prototype.window = function (ids, rows) {
    var T = ids.length, d = this.d, dh = this.dh, H = this.H, dff = this.dff, i, t, l, h, j, c;
    if (T < 1 || T > this.nCtx) throw new Error("a window holds 1 to n_ctx = " + this.nCtx + " ids, got " + T);
    var bufs = this.wbufs;
    if (!bufs) {
      var n = this.nCtx;
      bufs = this.wbufs = { X: this.alloc(n * d), Hn: this.alloc(n * d), Q: this.alloc(n * d),
                            A: this.alloc(n * d), O: this.alloc(n * d), F: this.alloc(n * dff) };
    }
    var X = bufs.X, Hn = bufs.Hn, Q = bufs.Q, A = bufs.A, O = bufs.O, F = bufs.F, s = this.scores, acc = this.acc;
    for (t = 0; t < T; t++) for (i = 0; i < d; i++) X[t * d + i] = this.wte[ids[t] * d + i] + this.wpe[t * d + i];
    if (rows) for (t = 0; t < T; t++) rows[t] = [];
    for (l = 0; l < this.L; l++) {
      var B = this.layers[l], last = l === this.L - 1, K = B.K, Vc = B.Vc;
      for (t = 0; t < T; t++) layerNorm(X, t * d, B.ln1G, B.ln1B, this.eps, Hn, t * d, d);
      this.mm(Hn, 0, T, d, B.Wq, B.bq, d, Q, 0);
      this.mm(Hn, 0, T, d, B.Wk, B.bk, d, B.K, 0);
      this.mm(Hn, 0, T, d, B.Wv, B.bv, d, B.Vc, 0);
      for (t = 0; t < T; t++) {
        var lr = rows ? [] : null, need = !last || t === T - 1;
        if (!need && !rows) continue;  // the last layer: other queries matter only for the view
        for (h = 0; h < H; h++) {
          attend(Q, t * d + h * dh, K, Vc, d, h * dh, dh, t + 1, s, acc, need ? A : null, t * d + h * dh);
          if (lr) lr.push(new Float32Array(s.subarray(0, t + 1)));
        }
        if (rows) rows[t].push(lr);
      }
      // the last layer's W_o and MLP only for the last position (the only logits wanted)
      var t0 = last ? T - 1 : 0, nT = T - t0, Aw = A.subarray(t0 * d), Xw = X.subarray(t0 * d);
      this.mm(Aw, 0, nT, d, B.Wo, B.bo, d, O, 0);
      for (i = 0; i < nT * d; i++) Xw[i] += O[i];
      for (t = 0; t < nT; t++) layerNorm(Xw, t * d, B.ln2G, B.ln2B, this.eps, Hn, t * d, d);
      this.mm(Hn, 0, nT, d, B.Win, B.bin, dff, F, 0);
      geluInPlace(F, nT * dff);
      this.mm(F, 0, nT, dff, B.Wout, B.bout, d, O, 0);
      for (i = 0; i < nT * d; i++) Xw[i] += O[i];
    }
    this.len = T;
    var hh = this.h;
    layerNorm(X, (T - 1) * d, this.lnfG, this.lnfB, this.eps, hh, 0, d);
    return this.logits(hh, 0);
  };

  // ------------------------------------------------------------------ a sequence with its cache
  // Holds the ids of a text; logits() gives the next-token logits, reusing the KV cache where the
  // window (the last n_ctx ids) still starts where the cache does; otherwise it re-reads the window.
  function Runner(model) {
    this.m = model; this.cached = []; this.start = 0; this.rows = []; this.keepRows = true;
  }
  Runner.prototype.logits = function (ids) {
    var m = this.m, n = ids.length;
    if (n < 1) throw new Error("need at least one character");
    var start = Math.max(0, n - m.nCtx), keep = 0;
    if (start === this.start) {
      var lim = Math.min(this.cached.length, n - start - 1);  // the last id is always re-run (its logits)
      while (keep < lim && this.cached[keep] === ids[start + keep]) keep++;
    }
    m.len = keep; this.cached.length = keep; this.rows.length = keep; this.start = start;
    var out = null;
    if (keep === 0 && n - start > 1) {  // nothing to reuse: read the whole window at once
      var win = ids.slice(start, n), rws = this.keepRows ? [] : null;
      out = m.window(win, rws);
      this.cached = win; this.rows = rws || win.map(function () { return null; });
      return out;
    }
    for (var p = start + keep; p < n; p++) {
      var last = p === n - 1, rows = this.keepRows ? [] : null;
      out = m.step(ids[p], last, rows);
      this.cached.push(ids[p]); this.rows.push(rows);
    }
    return out;
  };

  // The distribution sampling draws from: logits / T, top-k (ties kept), top-p (the smallest set
  // reaching p, the first always kept), as wmbook.nn.sampling.filter_logits; T = 0: the argmax.
  // allowed (optional Uint8Array): ids with 0 are never chosen (constrained decoding).
  function distribution(logits, T, topK, topP, allowed) {
    var V = logits.length, z = new Float64Array(V), i, best = -1;
    for (i = 0; i < V; i++) {
      z[i] = (allowed && !allowed[i]) ? -Infinity : logits[i];
      if (z[i] > -Infinity && (best < 0 || z[i] > z[best])) best = i;
    }
    if (best < 0) throw new Error("the constraint allows no character");
    var p = new Float64Array(V);
    if (!(T > 0)) { p[best] = 1; return p; }
    for (i = 0; i < V; i++) z[i] /= T;
    if (topK >= 1 && topK < V) {
      var sorted = Array.prototype.slice.call(z).sort(function (u, v) { return v - u; }), kth = sorted[topK - 1];
      for (i = 0; i < V; i++) if (z[i] < kth) z[i] = -Infinity;
    }
    var max = z[best] , sum = 0;
    for (i = 0; i < V; i++) { p[i] = z[i] === -Infinity ? 0 : Math.exp(z[i] - max); sum += p[i]; }
    for (i = 0; i < V; i++) p[i] /= sum;
    if (topP > 0 && topP < 1) {
      var order = [];
      for (i = 0; i < V; i++) order.push(i);
      order.sort(function (u, v) { return z[v] - z[u] || u - v; });
      var cum = 0, kept = 0;
      for (var r = 0; r < V; r++) {
        var id = order[r];
        if (cum >= topP) p[id] = 0; else { cum += p[id]; }
      }
      for (i = 0; i < V; i++) kept += p[i];
      for (i = 0; i < V; i++) p[i] /= kept;
    }
    return p;
  }

  function draw(p, u) {  // = wmbook.view.live_gpt.sample_index
    var total = 0, last = -1;
    for (var i = 0; i < p.length; i++) {
      if (p[i] > 0) { total += p[i]; last = i; if (u < total) return i; }
    }
    return last;
  }

  // ------------------------------------------------------------------ set-up
  var model, vocab = ARGS.model.vocab, index = {};
  try {
    model = new Model(ARGS.model);
  } catch (err) {
    root.querySelector(".wmb-live-body").textContent = "Could not read the model: " + err.message;
    throw err;
  }
  vocab.forEach(function (ch, i) { index[ch] = i; });

  function encode(text) {
    var ids = [], unknown = [];
    for (var k = 0; k < text.length; k++) {
      var ch = text[k];
      if (index.hasOwnProperty(ch)) ids.push(index[ch]); else if (unknown.indexOf(ch) < 0) unknown.push(ch);
    }
    return { ids: ids, unknown: unknown };
  }
  function encodeStrict(text) {
    var e = encode(text);
    if (e.unknown.length) throw new Error("characters outside the model's vocabulary: " + JSON.stringify(e.unknown));
    return e.ids;
  }
  function decode(ids) { return ids.map(function (i) { return vocab[i]; }).join(""); }

  var constraint = null;
  var constraintError = "";
  if (ARGS.settings.constrain) {
    try { constraint = new Function("text", "allowed", ARGS.settings.constrain); }  // eslint-disable-line no-new-func
    catch (err) { constraintError = "The constraint could not be compiled (" + err.message + "); generating without it."; }
  }
  function allowedFor(ids) {
    if (!constraint) return null;
    var allowed = new Uint8Array(model.V); allowed.fill(1);
    constraint(decode(ids), allowed);
    return allowed;
  }

  // Append n ids to `ids` (in place); opts: temperature (0 = greedy), top_k, top_p, rand (a function).
  function extend(runner, ids, n, opts) {
    for (var t = 0; t < n; t++) {
      var logits = runner.logits(ids);
      var p = distribution(logits, opts.temperature, opts.top_k || 0, opts.top_p || 1, allowedFor(ids));
      ids.push(opts.temperature > 0 ? draw(p, opts.rand()) : argmax(p));
    }
    return ids;
  }
  function argmax(p) { var b = 0; for (var i = 1; i < p.length; i++) if (p[i] > p[b]) b = i; return b; }

  // ------------------------------------------------------------------ the API (tests, other pages)
  var api = {
    vocab: vocab, config: model.cfg, rng: rng, distribution: distribution, draw: draw,
    encode: encodeStrict, decode: decode,
    // next-token logits after each prefix of `text` (text no longer than n_ctx): [[V floats], ...]
    logitsAll: function (text) {
      var ids = encodeStrict(text), r = new Runner(model), out = [];
      if (ids.length > model.nCtx) throw new Error("logitsAll: text longer than n_ctx = " + model.nCtx);
      r.keepRows = false;
      for (var n = 1; n <= ids.length; n++) out.push(Array.prototype.slice.call(r.logits(ids.slice(0, n))));
      return out;
    },
    logits: function (text) {
      var r = new Runner(model); r.keepRows = false;
      return Array.prototype.slice.call(r.logits(encodeStrict(text)));
    },
    // attention weights of the last query of `text`: [layer][head] -> array over the window
    attention: function (text) {
      var r = new Runner(model); r.logits(encodeStrict(text));
      return r.rows[r.rows.length - 1].map(function (l) { return l.map(function (row) { return Array.prototype.slice.call(row); }); });
    },
    // continue `text` by n characters: opts {temperature, top_k, top_p, seed}; temperature 0 = greedy
    generate: function (text, n, opts) {
      opts = opts || {};
      var r = new Runner(model); r.keepRows = false;
      var ids = encodeStrict(text), k = ids.length;
      extend(r, ids, n, { temperature: opts.temperature || 0, top_k: opts.top_k || 0, top_p: opts.top_p || 1,
                          rand: rng(opts.seed || 0) });
      return decode(ids.slice(k));
    },
    // greedy generation speed: {chars, seconds, chars_per_s}; full context when text has >= n_ctx characters
    bench: function (text, n) {
      var r = new Runner(model); r.keepRows = false;
      var ids = encodeStrict(text);
      var t0 = performance.now();
      extend(r, ids, n, { temperature: 0 });
      var s = (performance.now() - t0) / 1000;
      return { chars: n, seconds: s, chars_per_s: n / s };
    },
    // which code runs the matrix products: "wasm" (SIMD) or "js"; kernel("js") switches to JavaScript
    kernel: function (name) {
      if (name === "js" || (name === "wasm" && model.wasm)) model.kernel = name;
      return model.kernel;
    },
    toFloat16: toFloat16,
    setConstraint: function (fn) { constraint = fn || null; refresh(); },
    state: function () { return { text: decode(seq), prompt_length: promptLen, query: query, layer: layer, head: head }; }
  };
  root.wmbLive = api;

  // ------------------------------------------------------------------ the view
  var S = ARGS.settings, body = root.querySelector(".wmb-live-body");
  body.textContent = "";
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function idOf(name) { return ROOT_ID + "-" + name; }
  function show(ch) { return ch === " " ? "\u2423" : ch === "\n" ? "\u21b5" : ch === "\t" ? "\u21e5" : ch; }

  var promptLab = el("label", "wmb-lab", "Prompt (Ctrl+Enter samples; characters the model does not know are left out)");
  promptLab.htmlFor = idOf("prompt");
  var prompt = el("textarea"); prompt.id = idOf("prompt"); prompt.value = S.prompt; prompt.rows = 2;
  prompt.spellcheck = false;
  body.appendChild(promptLab); body.appendChild(prompt);
  var note = el("div", "wmb-note"); note.setAttribute("aria-live", "polite"); body.appendChild(note);

  var controls = el("div", "wmb-controls"); body.appendChild(controls);
  function slider(name, label, min, max, step, value, fmt) {
    var wrap = el("label", "wmb-ctl"), inp = el("input"), out = el("output");
    inp.type = "range"; inp.min = min; inp.max = max; inp.step = step; inp.value = value; inp.id = idOf(name);
    inp.setAttribute("data-wmb", name);
    out.htmlFor = inp.id;
    function upd() { out.textContent = fmt(+inp.value); inp.setAttribute("aria-valuetext", fmt(+inp.value)); }
    inp.addEventListener("input", function () { upd(); refresh(); });
    upd();
    wrap.appendChild(el("span", "wmb-lab", label)); wrap.appendChild(inp); wrap.appendChild(out);
    controls.appendChild(wrap);
    return inp;
  }
  var tempIn = slider("temperature", "temperature", 0, 2, 0.05, S.temperature,
                      function (v) { return v === 0 ? "0 (greedy)" : v.toFixed(2); });
  var topKIn = slider("top_k", "top-k", 0, model.V, 1, S.top_k, function (v) { return v === 0 ? "off" : String(v); });
  var topPIn = slider("top_p", "top-p", 0.05, 1, 0.05, S.top_p, function (v) { return v >= 1 ? "off" : v.toFixed(2); });
  function number(name, label, min, max, value) {
    var wrap = el("label", "wmb-ctl"), inp = el("input");
    inp.type = "number"; inp.min = min; inp.max = max; inp.step = 1; inp.value = value; inp.id = idOf(name);
    inp.setAttribute("data-wmb", name);
    wrap.appendChild(el("span", "wmb-lab", label)); wrap.appendChild(inp); controls.appendChild(wrap);
    return inp;
  }
  var seedIn = number("seed", "seed", 0, 4294967295, S.seed);
  var nIn = number("n_new", "characters", 1, 2000, S.n_new);

  var buttons = el("div", "wmb-controls"); body.appendChild(buttons);
  function button(name, label, title, fn) {
    var b = el("button", null, label); b.type = "button"; b.title = title; b.setAttribute("data-wmb", name);
    b.addEventListener("click", fn); buttons.appendChild(b); return b;
  }
  var bSample = button("sample", "sample", "Sample the next characters with the temperature, top-k and top-p set above", function () { run(+nIn.value, false); });
  var bGreedy = button("greedy", "greedy", "Always take the most probable next character", function () { run(+nIn.value, true); });
  var bStep = button("step", "step", "Add one character (sampled; greedy when the temperature is 0)", function () { run(1, false); });
  var bStop = button("stop", "stop", "Stop generating (Esc)", function () { stopFlag = true; });
  var bReset = button("reset", "restart", "Back to the prompt; the seed starts again", function () { restart(); });
  bStop.disabled = true;

  var textBox = el("div", "wmb-text"); textBox.setAttribute("aria-live", "off"); textBox.setAttribute("aria-label", "text so far");
  body.appendChild(textBox);

  var panel = el("div", "wmb-panel"); body.appendChild(panel);
  var distBox = el("div", "wmb-dist"); panel.appendChild(distBox);
  var distCap = el("div", "wmb-cap"); distBox.appendChild(distCap);
  var bars = el("div"); bars.setAttribute("role", "list"); distBox.appendChild(bars);

  var attnBox = el("div", "wmb-attn"); panel.appendChild(attnBox);
  var attnCtl = el("div", "wmb-controls"); attnBox.appendChild(attnCtl);
  function select(name, label, options) {
    var wrap = el("label", "wmb-ctl"), s = el("select");
    s.id = idOf(name); s.setAttribute("data-wmb", name);
    options.forEach(function (o) { var opt = el("option", null, o[1]); opt.value = o[0]; s.appendChild(opt); });
    wrap.appendChild(el("span", "wmb-lab", label)); wrap.appendChild(s); attnCtl.appendChild(wrap);
    s.addEventListener("change", function () { layer = +layerSel.value; head = +headSel.value; drawAttention(); });
    return s;
  }
  var layerSel = select("layer", "layer", Array.apply(null, Array(model.L)).map(function (_, i) { return [i, String(i)]; }));
  var headSel = select("head", "head", Array.apply(null, Array(model.H)).map(function (_, i) { return [i, String(i)]; })
                       .concat([[-1, "mean of heads"]]));
  var attnCap = el("div", "wmb-cap"); attnBox.appendChild(attnCap);
  var row = el("div", "wmb-row"); row.tabIndex = 0; row.setAttribute("role", "listbox");
  row.setAttribute("aria-label", "characters in the model's window; arrow keys choose the query");
  attnBox.appendChild(row);
  var status = el("div", "wmb-status"); status.setAttribute("aria-live", "polite"); body.appendChild(status);
  // the book's attention explorer (page 2.1) on the current window: every layer and head
  var exBtn = null, exBox = null, exOpen = false, exCount = 0;
  if (EX) {
    exBtn = el("button", null, "attention explorer"); exBtn.type = "button"; exBtn.setAttribute("data-wmb", "explorer");
    exBtn.setAttribute("aria-pressed", "false");
    exBtn.title = "Open the attention explorer on the characters in the window (every layer and head)";
    attnCtl.appendChild(exBtn);
    exBox = el("div", "wmb-exbox"); body.appendChild(exBox);
    exBtn.addEventListener("click", function () {
      exOpen = !exOpen; exBtn.setAttribute("aria-pressed", String(exOpen));
      if (exOpen) drawExplorer(); else exBox.textContent = "";
    });
  }
  function drawExplorer() {
    if (!EX || !exOpen) return;
    var n = runner.cached.length, L = model.L, H = model.H;
    exBox.textContent = "";
    if (!n) return;
    var bytes = new Uint8Array(2 * L * H * n * n), k = 0, l, h, q, j;
    for (l = 0; l < L; l++) for (h = 0; h < H; h++) for (q = 0; q < n; q++) {
      var r = runner.rows[q][l][h];
      for (j = 0; j < n; j++) {
        var bits = toFloat16(j <= q && r[j] > 0 ? Math.log(r[j]) : -65504);
        bytes[k++] = bits & 255; bytes[k++] = bits >>> 8;
      }
    }
    var bin = "";
    for (k = 0; k < bytes.length; k += 8192) bin += String.fromCharCode.apply(null, bytes.subarray(k, k + 8192));
    var id = ROOT_ID + "-ex" + (++exCount), box = el("div", "wmb-attn"), st = el("style");
    box.id = id; box.setAttribute("data-wmb-version", "1");
    st.textContent = EX.css.split("__WMB_UID__").join(id);
    box.appendChild(st);
    var hdr = el("div", "wmb-head");
    hdr.appendChild(el("strong", "wmb-title", "The window as the attention explorer shows it"));
    hdr.appendChild(el("span", "wmb-sub", n + " characters, " + L + " layers \u00d7 " + H + " heads; rebuilt after each generation"));
    box.appendChild(hdr);
    box.appendChild(el("div", "wmb-body"));
    exBox.appendChild(box);
    var win = decode(runner.cached).split("").map(show);
    EX.run(id, {
      examples: [{ name: "window", tokens: win, L: L, H: H, T: n, total: n, real: null, special: [], logw: btoa(bin) }],
      options: { causal: true, hideSpecial: false, hidePadding: true, temperature: 1, layer: layer, head: Math.max(head, 0), mode: "head" }
    });
  }

  // ------------------------------------------------------------------ state
  var runner = new Runner(model), seq = [], promptLen = 0, rand = rng(S.seed), query = -1;
  var layer = 0, head = 0, busy = false, stopFlag = false, nextP = null, lastLogits = null;

  function opts() {
    return { temperature: +tempIn.value, top_k: +topKIn.value, top_p: +topPIn.value };
  }
  function restart() {
    var e = encode(prompt.value);
    note.textContent = (e.unknown.length ? "Left out (not in the model's vocabulary): " +
      e.unknown.map(function (c) { return JSON.stringify(c); }).join(" ") + " " : "") + constraintError;
    seq = e.ids; promptLen = seq.length; query = -1; status.textContent = "";
    rand = rng((+seedIn.value) >>> 0);
    refresh();
  }
  // recompute the next-character distribution for the text so far and redraw
  function refresh() {
    if (!seq.length) { runner = new Runner(model); }  // nothing to show: forget the last text's cache
    lastLogits = seq.length ? runner.logits(seq) : null;
    if (lastLogits) {
      var o = opts();
      nextP = distribution(lastLogits, o.temperature, o.top_k, o.top_p, allowedFor(seq));
    } else nextP = null;
    drawText(); drawBars(); drawAttention(); drawExplorer();
  }

  function drawText() {
    textBox.textContent = "";
    var start = Math.max(0, seq.length - model.nCtx), gone = decode(seq.slice(0, start));
    if (gone) textBox.appendChild(el("span", "wmb-gone", gone));
    var pin = decode(seq.slice(start, Math.max(start, promptLen))), gen = decode(seq.slice(Math.max(start, promptLen)));
    if (pin) textBox.appendChild(el("span", "wmb-prompt", pin));
    if (gen) textBox.appendChild(el("span", "wmb-gen", gen));
    textBox.scrollTop = textBox.scrollHeight;
  }

  function drawBars() {
    bars.textContent = "";
    if (!nextP) { distCap.textContent = "Type a prompt to see the next-character distribution."; return; }
    var o = opts();
    distCap.textContent = "Next character: the 10 most probable" +
      (o.temperature > 0 ? " (temperature " + o.temperature.toFixed(2) + (o.top_k ? ", top-k " + o.top_k : "") +
       (o.top_p < 1 ? ", top-p " + o.top_p.toFixed(2) : "") + ")" : " (greedy: all on the argmax)");
    var ids = [];
    for (var i = 0; i < nextP.length; i++) ids.push(i);
    ids.sort(function (a, b) { return nextP[b] - nextP[a] || lastLogits[b] - lastLogits[a]; });
    ids.slice(0, 10).forEach(function (id) {
      var r = el("div", "wmb-bar-row"), tr = el("div", "wmb-bar-track"), b = el("div", "wmb-bar");
      r.setAttribute("role", "listitem");
      b.style.width = (100 * nextP[id]).toFixed(1) + "%";
      tr.appendChild(b);
      r.appendChild(el("span", "wmb-bar-ch", show(vocab[id])));
      r.appendChild(tr);
      r.appendChild(el("span", "wmb-bar-val", nextP[id].toFixed(3)));
      r.title = JSON.stringify(vocab[id]) + ": p = " + nextP[id].toFixed(4) + ", logit " + lastLogits[id].toFixed(3);
      bars.appendChild(r);
    });
  }

  function drawAttention() {
    row.textContent = "";
    var n = runner.cached.length;
    if (!n) { attnCap.textContent = ""; return; }
    var q = query < 0 || query >= n ? n - 1 : query;
    var rws = runner.rows[q][layer], w;
    if (head >= 0) w = rws[head];
    else {
      w = new Float32Array(q + 1);
      rws.forEach(function (r) { for (var j = 0; j <= q; j++) w[j] += r[j] / rws.length; });
    }
    var win = decode(runner.cached), best = 0;
    for (var j = 0; j <= q; j++) if (w[j] > w[best]) best = j;
    attnCap.textContent = "Layer " + layer + ", " + (head >= 0 ? "head " + head : "mean of heads") +
      ": where the query " + JSON.stringify(win[q]) + " (position " + (q + 1) + " of " + n + " in the window of " +
      model.nCtx + ") reads from; most: " + JSON.stringify(win[best]) + " at " + (best + 1) + " (" + w[best].toFixed(2) + ")";
    for (var k = 0; k < n; k++) {
      var cell = el("span", "wmb-cell", show(win[k])), wk = k <= q ? w[k] : 0;
      cell.setAttribute("data-pos", k);
      cell.setAttribute("role", "option");
      cell.setAttribute("aria-selected", k === q ? "true" : "false");
      if (k > q) cell.classList.add("wmb-future");
      else {
        cell.style.background = "rgba(var(--wmb-heat-rgb), " + Math.min(1, Math.sqrt(wk)).toFixed(3) + ")";
        if (Math.sqrt(wk) > 0.55) cell.classList.add("wmb-hot");
      }
      if (k === q) cell.classList.add("wmb-q");
      cell.title = JSON.stringify(win[k]) + " at " + (k + 1) + (k <= q ? ": weight " + wk.toFixed(3) : ": after the query (masked)");
      row.appendChild(cell);
    }
  }

  row.addEventListener("click", function (ev) {
    var t = ev.target.closest ? ev.target.closest(".wmb-cell") : null;
    if (!t) return;
    query = +t.getAttribute("data-pos"); drawAttention();
  });
  row.addEventListener("keydown", function (ev) {
    var n = runner.cached.length, q = query < 0 ? n - 1 : query;
    if (ev.key === "ArrowLeft") q = Math.max(0, q - 1);
    else if (ev.key === "ArrowRight") q = Math.min(n - 1, q + 1);
    else if (ev.key === "Home") q = 0;
    else if (ev.key === "End") q = n - 1;
    else return;
    ev.preventDefault();
    query = q === n - 1 ? -1 : q; drawAttention();
  });
  prompt.addEventListener("input", function () { if (!busy) restart(); });
  prompt.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); run(+nIn.value, false); }
  });
  seedIn.addEventListener("change", function () { rand = rng((+seedIn.value) >>> 0); });
  root.addEventListener("keydown", function (ev) { if (ev.key === "Escape" && busy) stopFlag = true; });

  // generate n characters in slices of about 40 ms, so the page stays responsive
  function run(n, greedy) {
    if (busy || !seq.length) {
      if (!seq.length) status.textContent = "Type a prompt first.";
      return;
    }
    n = Math.max(1, Math.min(2000, n | 0));
    busy = true; stopFlag = false;
    var from = document.activeElement, controls = [bSample, bGreedy, bStep, bReset];
    var hadFocus = controls.indexOf(from) >= 0;  // a disabled button loses the focus: give it to "stop"
    controls.forEach(function (b) { b.disabled = true; }); bStop.disabled = false;
    if (hadFocus) bStop.focus();
    var o = opts(), done = 0, t0 = performance.now(), failed = null;
    if (greedy) o.temperature = 0;
    o.rand = rand;
    function slice() {
      var until = performance.now() + 40;
      try {
        while (done < n && !stopFlag && performance.now() < until) { extend(runner, seq, 1, o); done++; }
      } catch (err) {
        failed = err.message;
      }
      if (done < n && !stopFlag && !failed) { drawText(); setTimeout(slice, 0); return; }
      var s = (performance.now() - t0) / 1000;
      busy = false;
      controls.forEach(function (b) { b.disabled = false; }); bStop.disabled = true;
      if (hadFocus && (document.activeElement === bStop || document.activeElement === document.body)) from.focus();
      query = -1;
      refresh();
      if (failed) status.textContent = "Stopped: " + failed;
      else status.textContent = done + (done === 1 ? " character " : " characters ") + (greedy || !(o.temperature > 0) ? "greedy" : "sampled") +
          " in " + s.toFixed(2) + " s (" + (done / Math.max(s, 1e-3)).toFixed(0) + " per second); text so far " + seq.length +
          " characters, the model sees the last " + Math.min(seq.length, model.nCtx) + ".";
      root.setAttribute("data-wmb-done", String(+(root.getAttribute("data-wmb-done") || 0) + 1));
    }
    setTimeout(slice, 0);
  }

  // theme: .wmb-dark when the resolved background is dark (the explorer's rule), for the heat colours
  var probe = null;
  function parseColor(css, fallback) {  // any CSS colour -> [r, g, b, a] (0..255)
    if (!probe) { probe = document.createElement("canvas"); probe.width = probe.height = 1; }
    var ctx = probe.getContext("2d", { willReadFrequently: true });
    ctx.clearRect(0, 0, 1, 1); ctx.fillStyle = fallback; if (css) ctx.fillStyle = css; ctx.fillRect(0, 0, 1, 1);
    var px = ctx.getImageData(0, 0, 1, 1).data;
    return [px[0], px[1], px[2], px[3]];
  }
  function lum(c) { return (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255; }
  function theme() {
    var cs = getComputedStyle(root);
    var fg = parseColor(cs.getPropertyValue("--wmb-fg").trim() || cs.color, "#1f2328");
    var bg = parseColor(cs.getPropertyValue("--wmb-bg").trim(), "rgba(0,0,0,0)");
    var dark = bg[3] < 128 ? lum(fg) > 0.5 : lum(bg) < 0.45;
    if (root.classList.contains("wmb-dark") !== dark) root.classList.toggle("wmb-dark", dark);
  }
  theme();
  if (window.matchMedia) {
    var mq = window.matchMedia("(prefers-color-scheme: dark)");
    if (mq.addEventListener) mq.addEventListener("change", theme);
  }
  if (window.MutationObserver) {  // Jupyter Book / JupyterLab switch themes with an attribute
    new MutationObserver(theme).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme", "class"] });
    if (document.body) new MutationObserver(theme).observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "class"] });
  }

  layerSel.value = "0"; headSel.value = "0";
  restart();
  root.setAttribute("data-wmb-ready", "1");
})(__WMB_ARGS__);
