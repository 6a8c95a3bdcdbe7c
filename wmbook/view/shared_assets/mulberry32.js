/* Mulberry32: the small seeded generator of the book's in-page views (= wmbook.lab.reader.mulberry32).
   Shared by tasks_assets/tasks.js and live_gpt_assets/live_gpt.js: their Python builders inline
   this file in front of the view's script, inside the same function scope (nothing global). */
function wmbMulberry32(seed) {
  var a = seed >>> 0;
  return function () {
    a = (a + 0x6D2B79F5) >>> 0;
    var t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
