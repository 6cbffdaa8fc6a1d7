// Canvas strokes -> the 28x28 MNIST-style image, in the browser: a port of digitlab.preprocess's stroke path
// (check_drawing, render_drawing, render_strokes), so that the page can predict without a server.
//
// It must give the pixels Python gives (tests/serve/test_browser.py compares both on hundreds of drawings),
// so it repeats each step with the same arithmetic:
//   1. the strokes are drawn as Pillow's ImageDraw draws them (wide lines as filled quadrilaterals, round caps
//      and joins as filled ellipses, coordinates truncated to integers) on a 4x supersampled canvas, then
//      averaged 4x4 as Image.reduce(4) does;
//   2. _normalise: crop to the ink, stretch the contrast, resize the longer side to 80 px (Pillow's BOX filter
//      on 8-bit pixels, or BILINEAR on 32-bit floats when enlarging), measure the stroke width (refusing dots),
//      resize into the 20 px box (BOX, floats), and centre the centre of mass at (14, 14).
// Float32 steps are rounded with Math.fround where NumPy or Pillow compute in float32; sums follow NumPy's
// order (pairwise along rows) so that even exact ties round the same way. Python's round() and np.rint round
// halves to even (roundHalfEven). Nothing here touches the DOM: it runs in a page or a worker alike.

export class UserError extends Error {
  constructor(message) { super(message); this.name = "UserError"; }
}
export class TooLargeError extends UserError {
  constructor(message) { super(message); this.name = "TooLargeError"; }
}
export class NoInkError extends UserError {
  constructor(message) { super(message); this.name = "NoInkError"; }
}

// digitlab.limits.DEFAULT_LIMITS, the bounds that apply to drawings (the test checks they agree).
export const DEFAULT_LIMITS = Object.freeze({
  minCanvasSide: 8, maxCanvasSide: 4000, maxStrokes: 1000, maxStrokePoints: 20000, maxPenWidth: 200,
});

const BOX = 20, FRAME = 28, CENTRE = 14.0, WORK = 80;
const MNIST_WIDTH = [5.7, 7.9, 11.1];   // MNIST's stroke widths at the working resolution: 10th pct, median, 90th
const INK_LEVEL = 0.5, MIN_CONTRAST = 40.0;
const SS = 4;                           // supersampling of the stroke drawing

const f32 = Math.fround;

// Python's round() and NumPy's rint: halves to even.
export function roundHalfEven(x) {
  const f = Math.floor(x), d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

// Python's "%g" for the numbers in messages (6 significant digits, no trailing zeros).
function g(v) { return String(Number(v.toPrecision(6))); }

// ------------------------------------------------------------------------------------------- checking

export function defaultPenWidth(width, height, limits = DEFAULT_LIMITS) {
  return Math.min(Math.max(width, height) / 14, limits.maxPenWidth);
}

function number(name, value) {
  if (typeof value !== "number") throw new UserError(`${name} must be a number, got ${JSON.stringify(value)}`);
  if (!Number.isFinite(value)) throw new UserError(`${name} must be finite, got ${value}`);
  return value;
}

function canvasSide(name, value, limits) {
  const v = number(name, value);
  const range = `${limits.minCanvasSide}..${limits.maxCanvasSide} px`;
  if (v > limits.maxCanvasSide) throw new TooLargeError(`canvas ${name} must lie in ${range}, got ${g(v)}`);
  if (!(v >= limits.minCanvasSide)) throw new UserError(`canvas ${name} must lie in ${range}, got ${g(v)}`);
  return v;
}

// Each non-empty stroke as a Float64Array [x0, y0, x1, y1, ...].
function checkStrokes(strokes, limits) {
  if (!Array.isArray(strokes)) throw new UserError(`strokes must be a list of strokes, got ${typeof strokes}`);
  if (strokes.length > limits.maxStrokes) {
    throw new TooLargeError(`at most ${limits.maxStrokes} strokes are accepted, got ${strokes.length}`);
  }
  const out = [], far = 100 * limits.maxCanvasSide;
  let total = 0;
  strokes.forEach((s, i) => {
    if (!Array.isArray(s)) throw new UserError(`stroke ${i} must be a list of (x, y) number pairs`);
    if (s.length === 0) return;
    if (!s.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === "number" && typeof p[1] === "number")) {
      throw new UserError(`stroke ${i} must be a list of (x, y) points`);
    }
    total += s.length;
    if (total > limits.maxStrokePoints) {
      throw new TooLargeError(`at most ${limits.maxStrokePoints} points are accepted over all strokes, got more`);
    }
    const a = new Float64Array(2 * s.length);
    let big = 0;
    s.forEach((p, j) => { a[2 * j] = p[0]; a[2 * j + 1] = p[1]; });
    for (const v of a) {
      if (!Number.isFinite(v)) throw new UserError(`stroke ${i} holds a non-finite coordinate (NaN or infinity)`);
      big = Math.max(big, Math.abs(v));
    }
    if (big > far) throw new UserError(`stroke ${i} has a coordinate far outside the canvas (${g(big)})`);
    out.push(a);
  });
  return out;
}

// Validate strokes and canvas (digitlab.preprocess.check_drawing): {strokes, width, height, penWidth}.
export function checkDrawing(strokes, width, height, penWidth = null, limits = DEFAULT_LIMITS) {
  const cw = canvasSide("width", width, limits), ch = canvasSide("height", height, limits);
  let pen;
  if (penWidth === null || penWidth === undefined) {
    pen = defaultPenWidth(cw, ch, limits);
  } else {
    pen = number("pen_width", penWidth);
    const widest = Math.min(Math.max(cw, ch), limits.maxPenWidth);
    if (!(pen > 0 && pen <= widest)) {
      throw new UserError(`pen_width must be > 0 and at most ${g(widest)} px (the canvas's longer side, and ` +
                          `at most ${g(limits.maxPenWidth)}), got ${g(pen)}`);
    }
  }
  return Object.freeze({ strokes: checkStrokes(strokes, limits), width: cw, height: ch, penWidth: pen });
}

// Strokes -> Uint8Array(784), row-major (digitlab.preprocess.render_strokes). Throws NoInkError when nothing
// but a dot is drawn, UserError/TooLargeError for a malformed drawing.
export function renderStrokes(strokes, width, height, penWidth = null, limits = DEFAULT_LIMITS) {
  return renderDrawing(checkDrawing(strokes, width, height, penWidth, limits));
}

// ------------------------------------------------------------------------------------------- drawing

// A Uint8Array picture, w x h, with Pillow's 8-bit drawing primitives.
class Picture {
  constructor(w, h) {
    this.w = w; this.h = h; this.data = new Uint8Array(w * h);
    this.ellipses = new Map();   // (a, b) -> the rows of a filled ellipse of that size
    this.xx = new Float32Array(64);   // the polygon filler's crossings of one scanline
  }

  point(x, y) { if (x >= 0 && x < this.w && y >= 0 && y < this.h) this.data[y * this.w + x] = 255; }

  hline(x0, y, x1) {
    if (y < 0 || y >= this.h) return;
    if (x0 < 0) x0 = 0; else if (x0 >= this.w) return;
    if (x1 < 0) return; else if (x1 >= this.w) x1 = this.w - 1;
    if (x0 <= x1) this.data.fill(255, y * this.w + x0, y * this.w + x1 + 1);
  }

  // A filled polygon from its edges, scanline by scanline, as Pillow's polygon filler (8-bit images).
  polygon(edges) {
    let ymin = this.h - 1, ymax = 0;
    const table = [];
    for (const e of edges) {
      if (ymin > e.ymin) ymin = e.ymin;
      if (ymax < e.ymax) ymax = e.ymax;
      if (e.ymin === e.ymax) { this.hline(e.xmin, e.ymin, e.xmax); continue; }
      table.push(e);
    }
    if (ymin < 0) ymin = 0;
    if (ymax > this.h) ymax = this.h;
    const at = (e, y) => f32(f32((y - e.y0) * e.dx) + e.x0);   // float32, as the C code
    if (this.xx.length < 2 * table.length) this.xx = new Float32Array(2 * table.length);
    const xx = this.xx;
    for (let y = ymin; y <= ymax; y++) {
      let j = 0;
      for (let i = 0; i < table.length; i++) {
        const cur = table[i];
        if (!(y >= cur.ymin && y <= cur.ymax)) continue;
        xx[j++] = at(cur, y);
        if (y === cur.ymax && y < ymax) {
          xx[j] = xx[j - 1]; j++;   // needed to draw consistent polygons
        } else if ((y === cur.ymin || y === cur.ymax) && cur.dx !== 0) {
          // connect discontiguous corners
          for (let k = 0; k < i; k++) {
            const other = table[k];
            if ((y !== other.ymin && y !== other.ymax) || other.dx === 0) continue;
            if (roundf(xx[j - 1]) !== roundf(at(other, y))) continue;
            const offset = y === cur.ymax ? -1 : 1;
            const adj = at(cur, y + offset);
            if (y + offset >= other.ymin && y + offset <= other.ymax) {
              const adjOther = at(other, y + offset), last = xx[j - 1];
              if (last > f32(adj + 1) && last > f32(adjOther + 1)) {
                xx[j - 1] = roundf(Math.max(adj, adjOther)) + 1;
              } else if (last < f32(adj - 1) && last < f32(adjOther - 1)) {
                xx[j - 1] = roundf(Math.min(adj, adjOther)) - 1;
              }
              break;
            }
          }
        }
      }
      for (let i = 1; i < j; i++) {   // sort the few crossings (insertion sort)
        const v = xx[i];
        let q = i - 1;
        while (q >= 0 && xx[q] > v) { xx[q + 1] = xx[q]; q--; }
        xx[q + 1] = v;
      }
      for (let i = 1; i < j; i += 2) this.hline(roundUpF(xx[i - 1]), y, roundDownF(xx[i]));
    }
  }

  // A line `width` px wide between integer points, without caps (Pillow's ImagingDrawWideLine).
  wideLine(x0, y0, x1, y1, width) {
    const dx = x1 - x0, dy = y1 - y0;
    if (dx === 0 && dy === 0) { this.point(x0, y0); return; }
    const big = Math.sqrt(dx * dx + dy * dy);   // hypot of integers: the sum of squares is exact
    const small = (width - 1) / 2.0;
    const ratioMax = roundUpD(small) / big, ratioMin = roundDownD(small) / big;
    const dxmin = roundDownD(ratioMin * dy), dxmax = roundDownD(ratioMax * dy);
    const dymin = roundDownD(ratioMin * dx), dymax = roundDownD(ratioMax * dx);
    const v = [[x0 - dxmin, y0 + dymax], [x1 - dxmin, y1 + dymax], [x1 + dxmax, y1 - dymin], [x0 + dxmax, y0 - dymin]];
    this.polygon([0, 1, 2, 3].map((i) => edge(v[i], v[(i + 1) % 4])));
  }

  // A filled ellipse in the integer box (x0, y0)-(x1, y1) (Pillow's ellipse rasteriser). A drawing's ellipses
  // are all of one or two sizes: their rows are computed once per size.
  ellipse(x0, y0, x1, y1) {
    const a = x1 - x0, b = y1 - y0;
    if (a < 0 || b < 0) return;
    const key = a * 65536 + b;
    let rows = this.ellipses.get(key);
    if (!rows) {
      const spans = [];
      for (const [X0, Y, X1] of ellipseSpans(a, b, a + b)) {
        spans.push(Math.trunc((X0 + a) / 2), Math.trunc((Y + b) / 2), Math.trunc((X1 + a) / 2));
      }
      rows = Int32Array.from(spans);
      this.ellipses.set(key, rows);
    }
    for (let i = 0; i < rows.length; i += 3) this.hline(x0 + rows[i], y0 + rows[i + 1], x0 + rows[i + 2]);
  }

  // Image.reduce(f) of an 8-bit picture whose sides are multiples of f: rounded means of f x f blocks.
  reduce(f) {
    const out = new Picture(this.w / f, this.h / f), n = f * f, half = n >> 1;
    for (let y = 0; y < out.h; y++) {
      for (let x = 0; x < out.w; x++) {
        let s = 0;
        for (let j = 0; j < f; j++) {
          const row = (y * f + j) * this.w + x * f;
          for (let i = 0; i < f; i++) s += this.data[row + i];
        }
        out.data[y * out.w + x] = Math.floor((s + half) / n);
      }
    }
    return out;
  }
}

// C's roundf (halves away from zero); ROUND_UP / ROUND_DOWN of Pillow's Draw.c on a float (F) or double (D).
// On a float, `f + 0.5F` is float arithmetic but `fabs(f) + 0.5F` is double (fabs returns a double).
function roundf(v) { return v >= 0 ? Math.floor(v + 0.5) : -Math.floor(-v + 0.5); }
function roundUpF(v) { return v >= 0 ? Math.floor(f32(v + 0.5)) : -Math.floor(Math.abs(v) + 0.5); }
function roundDownF(v) { return v >= 0 ? Math.ceil(f32(v - 0.5)) : -Math.ceil(Math.abs(v) - 0.5); }
function roundUpD(v) { return v >= 0 ? Math.floor(v + 0.5) : -Math.floor(Math.abs(v) + 0.5); }
function roundDownD(v) { return v >= 0 ? Math.ceil(v - 0.5) : -Math.ceil(Math.abs(v) - 0.5); }

function edge([x0, y0], [x1, y1]) {
  return { x0, y0, xmin: Math.min(x0, x1), xmax: Math.max(x0, x1), ymin: Math.min(y0, y1), ymax: Math.max(y0, y1),
           dx: y0 === y1 ? 0 : f32((x1 - x0) / (y1 - y0)) };
}

// One quarter of an ellipse on the grid of step 2 (points (2x + a % 2, 2y + b % 2)), Bresenham-like.
class Quarter {
  constructor(a, b) {
    this.finished = a < 0 || b < 0;
    if (this.finished) return;
    Object.assign(this, { cx: a, cy: b % 2, ex: a % 2, ey: b, a2: a * a, b2: b * b });
    this.a2b2 = this.a2 * this.b2;
  }

  delta(x, y) { return Math.abs(this.a2 * y * y + this.b2 * x * x - this.a2b2); }

  next() {   // [x, y], or null when done
    if (this.finished) return null;
    const ret = [this.cx, this.cy];
    if (this.cx === this.ex && this.cy === this.ey) {
      this.finished = true;
    } else {
      let nx = this.cx, ny = this.cy + 2, nd = this.delta(nx, ny);
      if (nx > 1) {
        let d = this.delta(this.cx - 2, this.cy + 2);
        if (nd > d) { nx = this.cx - 2; ny = this.cy + 2; nd = d; }
        d = this.delta(this.cx - 2, this.cy);
        if (nd > d) { nx = this.cx - 2; ny = this.cy; }
      }
      this.cx = nx; this.cy = ny;
    }
    return ret;
  }
}

// The horizontal spans [x0, y, x1] (grid of step 2, centred) of an ellipse with semi-axes a, b and ring width w.
function* ellipseSpans(a, b, w) {
  const leftmost = a % 2, outer = new Quarter(a, b);
  let first = w < 1 ? null : outer.next();
  if (first === null) return;
  let [pr, py] = first, pl = leftmost, finished = false;
  const inner = new Quarter(a - 2 * (w - 1), b - 2 * (w - 1));
  while (!finished) {
    const y = py, r = pr;
    let l = pl, p;
    while ((p = outer.next()) !== null && p[1] <= y) { /* skip the points of this row */ }
    if (p === null) finished = true; else [pr, py] = p;
    while ((p = inner.next()) !== null && p[1] <= y) l = p[0];
    pl = p === null ? leftmost : p[0];
    const buf = [];
    if ((l > 0 || l < r) && y > 0) buf.push([l === 0 ? 2 : l, y, r]);
    if (y > 0) buf.push([-r, y, -l]);
    if (l > 0 || l < r) buf.push([l === 0 ? 2 : l, -y, r]);
    buf.push([-r, -y, -l]);
    for (let i = buf.length - 1; i >= 0; i--) yield buf[i];
  }
}

// A checked drawing (checkDrawing) -> Uint8Array(784) (digitlab.preprocess.render_drawing).
export function renderDrawing(drawing) {
  const pts = drawing.strokes, cw = drawing.width, ch = drawing.height, pen = drawing.penWidth;
  if (!pts.length) throw new NoInkError("no ink: the canvas has no strokes");
  // What lies outside the canvas is cut off: the drawn region is the box of the points, clipped, plus the pen.
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const a of pts) {
    for (let i = 0; i < a.length; i += 2) {
      minX = Math.min(minX, a[i]); maxX = Math.max(maxX, a[i]);
      minY = Math.min(minY, a[i + 1]); maxY = Math.max(maxY, a[i + 1]);
    }
  }
  const x0 = Math.max(minX, 0.0), y0 = Math.max(minY, 0.0), x1 = Math.min(maxX, cw), y1 = Math.min(maxY, ch);
  if (x1 < x0 || y1 < y0) throw new NoInkError("no ink: every stroke lies outside the canvas");
  const extent = Math.max(x1 - x0, y1 - y0);
  if (extent < pen) {
    throw new NoInkError(`no ink: only a dot is drawn (the strokes span ${g(extent)} px, less than the ` +
                         `${g(pen)} px pen)`);
  }
  // The pen at the working resolution, brought into MNIST's range.
  const [lo, mid, hi] = MNIST_WIDTH;
  let workPen = pen * WORK / (extent + pen);
  if (!(lo <= workPen && workPen <= hi)) workPen = mid;
  const k = SS * (WORK - workPen) / extent;   // canvas px -> supersampled px
  const pr = SS * workPen / 2.0;               // pen radius, supersampled px
  const ox = x0 - pr / k, oy = y0 - pr / k;
  const pic = new Picture(SS * (WORK + 1), SS * (WORK + 1));
  const lw = Math.max(1, roundHalfEven(2 * pr));   // >= 23: the pen is at least 5.7 working px
  for (const a of pts) {
    const n = a.length / 2, px = new Float64Array(n), py = new Float64Array(n);
    for (let i = 0; i < n; i++) { px[i] = (a[2 * i] - ox) * k; py[i] = (a[2 * i + 1] - oy) * k; }
    for (let i = 0; i + 1 < n; i++) {
      pic.wideLine(Math.trunc(px[i]), Math.trunc(py[i]), Math.trunc(px[i + 1]), Math.trunc(py[i + 1]), lw);
    }
    for (let i = 0; i < n; i++) {   // round caps and joins
      pic.ellipse(Math.trunc(px[i] - pr), Math.trunc(py[i] - pr), Math.trunc(px[i] + pr), Math.trunc(py[i] + pr));
    }
  }
  const img = pic.reduce(SS);
  return normalise(img.data, img.w, img.h);
}

// ------------------------------------------------------------------------------------------- normalising

// Pillow's resampling coefficients of one axis (precompute_coeffs): bounds [xmin, n] and weights per output.
const FILTERS = {
  box: { support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1.0 : 0.0) },
  bilinear: { support: 1.0, f: (x) => { x = Math.abs(x); return x < 1.0 ? 1.0 - x : 0.0; } },
};

function coeffs(inSize, outSize, filter) {
  const scale = inSize / outSize, filterscale = Math.max(scale, 1.0);
  const support = filter.support * filterscale, ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(2 * outSize), kk = new Float64Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale, ss = 1.0 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.f((x + xmin - center + 0.5) * ss);
      kk[xx * ksize + x] = w; ww += w;
    }
    if (ww !== 0.0) for (let x = 0; x < xmax; x++) kk[xx * ksize + x] /= ww;
    bounds[2 * xx] = xmin; bounds[2 * xx + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

// Pillow's two-pass resize (horizontal, then vertical) of a w x h picture to ow x oh. `bits8`: an 8-bit
// picture (Uint8Array in and out, weights in 22-bit fixed point, each pass rounded and clipped); otherwise
// 32-bit floats (Float32Array in and out, double sums stored as float32 after each pass).
function resize(src, w, h, ow, oh, filter, bits8) {
  // Resample `lines` lines (rows, or columns) into lines of m values: value i of line l is
  // data[l * along + i * across].
  const pass = (data, lines, m, along, across, rows, c) => {
    const out = bits8 ? new Uint8Array(lines * m) : new Float32Array(lines * m);
    const k = bits8 ? c.kk.map((v) => Math.trunc(v < 0 ? v * 4194304 - 0.5 : v * 4194304 + 0.5)) : c.kk;
    for (let l = 0; l < lines; l++) {
      for (let o = 0; o < m; o++) {
        const xmin = c.bounds[2 * o], len = c.bounds[2 * o + 1], kb = o * c.ksize;
        let s = bits8 ? 1 << 21 : 0.0;
        for (let x = 0; x < len; x++) s += data[l * along + (x + xmin) * across] * k[kb + x];
        const at = rows ? l * m + o : o * lines + l;   // output laid out like the input: row-major
        out[at] = bits8 ? (s >= 1 << 30 ? 255 : s <= 0 ? 0 : Math.floor(s / 4194304)) : s;
      }
    }
    return out;
  };
  const rows = (data, width) => pass(data, data.length / width, ow, width, 1, true, coeffs(width, ow, filter));
  const cols = (data, width) => pass(data, width, oh, 1, width, false, coeffs(data.length / width, oh, filter));
  // Pillow 13 resizes vertically first when the height is scaled down and the picture is more than twice as
  // tall as wide (the rule seen on every shape this module resizes; the comparison test keeps it true).
  if (oh < h && h > 2 * w) {
    const tall = cols(src, w);
    return ow !== w ? rows(tall, w) : tall;
  }
  const wide = ow !== w ? rows(src, w) : src;
  return oh !== h ? cols(wide, ow) : wide;
}

// Mean stroke width 2 * area / perimeter of the ink above `level` (digitlab.preprocess.stroke_width).
function strokeWidth(ink, w, h, level) {
  let area = 0, inner = 0, edges = 0;
  const b = (i) => ink[i] > level;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x, v = b(i);
      if (!v) continue;
      area++;
      if (y === 0) edges++;
      if (y === h - 1) edges++;
      if (x === 0) edges++;
      if (x === w - 1) edges++;
    }
  }
  if (area === 0) return 0.0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (y + 1 < h && b(i) !== b(i + w)) inner++;
      if (x + 1 < w && b(i) !== b(i + 1)) inner++;
    }
  }
  return 2.0 * area / (inner + edges);
}

// NumPy's float32 sum of n values a[start], a[start + stride], ... (pairwise, blocks of 8, as np.add.reduce).
function pairwiseSum(a, start, n, stride) {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res = f32(res + a[start + i * stride]);
    return res;
  }
  if (n <= 128) {
    const r = new Float32Array(8);
    for (let j = 0; j < 8; j++) r[j] = a[start + j * stride];
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] = f32(r[j] + a[start + (i + j) * stride]);
    let res = f32(f32(f32(r[0] + r[1]) + f32(r[2] + r[3])) + f32(f32(r[4] + r[5]) + f32(r[6] + r[7])));
    for (; i < n; i++) res = f32(res + a[start + i * stride]);
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return f32(pairwiseSum(a, start, n2, stride) + pairwiseSum(a, start + n2 * stride, n - n2, stride));
}

// Crop, scale and centre a light-on-dark 8-bit picture into 28x28 (digitlab.preprocess._normalise with the
// identity level map and strokes=False: the pen was already brought to MNIST's width).
function normalise(grey, w, h) {
  let peak = 0;
  for (const v of grey) if (v > peak) peak = v;
  if (peak < MIN_CONTRAST) {
    throw new NoInkError(`no ink: the picture has no contrast (darkest to lightest differ by ${peak} of 255 ` +
                         `levels, at least ${MIN_CONTRAST.toFixed(0)} needed)`);
  }
  // Levels kept (fainter ones are noise): lo..255; the kept range stretched to 0-255.
  let lo = 0;
  while (!(lo >= 0.2 * peak)) lo++;
  const stretch = new Uint8Array(256);
  for (let v = lo; v < 256; v++) stretch[v] = Math.min(roundHalfEven(v * (255.0 / peak)), 255);
  let r0 = h, r1 = -1, c0 = w, c1 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (grey[y * w + x] >= lo) { r0 = Math.min(r0, y); r1 = Math.max(r1, y); c0 = Math.min(c0, x); c1 = Math.max(c1, x); }
    }
  }
  const ch = r1 - r0 + 1, cw = c1 - c0 + 1, crop = new Uint8Array(ch * cw);
  let total = 0;
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) { const v = stretch[grey[(y + r0) * w + x + c0]]; crop[y * cw + x] = v; total += v; }
  }
  if (Math.max(ch, cw) < 3 || total < 3 * 255) throw new NoInkError(`no ink: only a speck (${cw}x${ch} px) is drawn`);
  // The working resolution: longer side 80 px (digitlab.preprocess._to_working). A drawing is rendered at
  // 81 px, so the crop is never shrunk by half or more and the max-pooling step never applies.
  const scale = WORK / Math.max(ch, cw);
  const wh = Math.max(1, roundHalfEven(ch * scale)), ww = Math.max(1, roundHalfEven(cw * scale));
  const small = scale > 1 ? resize(Float32Array.from(crop), cw, ch, ww, wh, FILTERS.bilinear, false)
                          : resize(crop, cw, ch, ww, wh, FILTERS.box, true);
  const unit = f32(1 / 255), work = new Float32Array(ww * wh);
  for (let i = 0; i < work.length; i++) work[i] = f32(small[i] * unit);
  let width = strokeWidth(work, ww, wh, INK_LEVEL);
  if (width === 0) {
    let top = 0;
    for (const v of work) if (v > top) top = v;
    width = strokeWidth(work, ww, wh, f32(0.3 * top));
  }
  if (width === 0 || WORK / width < 2.0) {
    throw new NoInkError(`no ink: only a dot is drawn (ink ${cw}x${ch} px, about as wide as the stroke)`);
  }
  // The 20 px box, antialiased, then the centre of mass onto (14, 14).
  const bh = Math.max(1, roundHalfEven(wh * BOX / WORK)), bw = Math.max(1, roundHalfEven(ww * BOX / WORK));
  const box = resize(work, ww, wh, bw, bh, FILTERS.box, false);
  for (let i = 0; i < box.length; i++) box[i] = Math.min(Math.max(box[i], 0), 1);
  const mass = pairwiseSum(box, 0, box.length, 1);
  if (!(mass > 0)) throw new NoInkError("no ink: the picture is empty");
  let r = 0, c = 0;
  for (let y = 0; y < bh; y++) r += pairwiseSum(box, y * bw, bw, 1) * y;
  const cols = new Float32Array(bw);   // np.sum(axis=0): rows added in turn (one column: pairwise)
  if (bw === 1) cols[0] = pairwiseSum(box, 0, bh, 1);
  else for (let y = 0; y < bh; y++) for (let x = 0; x < bw; x++) cols[x] = f32(cols[x] + box[y * bw + x]);
  for (let x = 0; x < bw; x++) c += cols[x] * x;
  r /= mass; c /= mass;
  const top = Math.min(Math.max(roundHalfEven(CENTRE - r), 0), FRAME - bh);
  const left = Math.min(Math.max(roundHalfEven(CENTRE - c), 0), FRAME - bw);
  const digit = new Uint8Array(FRAME * FRAME);
  for (let y = 0; y < bh; y++) {
    for (let x = 0; x < bw; x++) {
      digit[(top + y) * FRAME + left + x] = Math.min(Math.max(roundHalfEven(f32(box[y * bw + x] * 255.0)), 0), 255);
    }
  }
  return digit;
}
