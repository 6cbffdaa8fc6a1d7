// The drawing pad: pointer events (mouse, pen, touch) turned into strokes on a canvas.
//
// Strokes are kept in the canvas's own coordinates (its width x height attributes, e.g. 280 x 280),
// whatever size the canvas is shown at, because that is what the API's `strokes` expect.
export class Pad {
  // canvas: the <canvas>; penWidth: () => pen width in canvas pixels; onChange(kind): "start" | "move" | "end"
  constructor(canvas, { penWidth, onChange }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.penWidth = penWidth;
    this.onChange = onChange;
    this.strokes = [];        // [{points: [[x, y], ...], pen}, ...]
    this.current = null;      // the stroke being drawn
    this.pointerId = null;
    this.background = null;   // 784 pixels (0-255) drawn under the strokes (an MNIST sample), or null
    canvas.addEventListener("pointerdown", (ev) => this.down(ev));
    canvas.addEventListener("pointermove", (ev) => this.move(ev));
    canvas.addEventListener("pointerup", (ev) => this.up(ev));
    canvas.addEventListener("pointercancel", (ev) => this.up(ev));
    canvas.addEventListener("contextmenu", (ev) => ev.preventDefault());
  }

  get width() { return this.canvas.width; }
  get height() { return this.canvas.height; }
  get empty() { return this.strokes.length === 0; }
  points() { return this.strokes.map((s) => s.points); }

  // The one pen width sent to the API: strokes drawn with different pens get their average.
  meanPen() {
    if (!this.strokes.length) return this.penWidth();
    return this.strokes.reduce((a, s) => a + s.pen, 0) / this.strokes.length;
  }

  toCanvas(ev) {
    const r = this.canvas.getBoundingClientRect();
    const cx = (v) => Math.min(this.width, Math.max(0, v)), cy = (v) => Math.min(this.height, Math.max(0, v));
    return [cx(Math.round((ev.clientX - r.left) * this.width / r.width * 10) / 10),
            cy(Math.round((ev.clientY - r.top) * this.height / r.height * 10) / 10)];
  }

  down(ev) {
    if (this.pointerId !== null || (ev.pointerType === "mouse" && ev.button !== 0)) return;
    ev.preventDefault();
    this.pointerId = ev.pointerId;
    this.canvas.setPointerCapture(ev.pointerId);
    this.current = { points: [this.toCanvas(ev)], pen: this.penWidth() };
    this.strokes.push(this.current);
    this.redraw();
    this.onChange("start");
  }

  move(ev) {
    if (ev.pointerId !== this.pointerId || !this.current) return;
    ev.preventDefault();
    const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
    for (const e of (events.length ? events : [ev])) {
      const p = this.toCanvas(e), pts = this.current.points, q = pts[pts.length - 1];
      if (Math.hypot(p[0] - q[0], p[1] - q[1]) >= 1) pts.push(p);
    }
    this.redraw();
    this.onChange("move");
  }

  up(ev) {
    if (ev.pointerId !== this.pointerId) return;
    this.pointerId = null; this.current = null;
    this.onChange("end");
  }

  clear() { this.strokes = []; this.background = null; this.redraw(); }
  undo() { this.strokes.pop(); this.redraw(); }

  redraw() {
    const ctx = this.ctx;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, this.width, this.height);
    if (this.background) {
      const img = ctx.createImageData(28, 28);
      this.background.forEach((v, i) => {
        img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
      });
      const tmp = document.createElement("canvas"); tmp.width = tmp.height = 28;
      tmp.getContext("2d").putImageData(img, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(tmp, 0, 0, this.width, this.height);
    }
    ctx.strokeStyle = ctx.fillStyle = "#fff";
    ctx.lineCap = ctx.lineJoin = "round";
    for (const s of this.strokes) this.drawStroke(s.points, s.pen);
  }

  drawStroke(points, pen) {
    const ctx = this.ctx;
    ctx.lineWidth = pen;
    if (points.length === 1) {
      ctx.beginPath(); ctx.arc(points[0][0], points[0][1], pen / 2, 0, 2 * Math.PI); ctx.fill();
      return;
    }
    ctx.beginPath(); ctx.moveTo(points[0][0], points[0][1]);
    for (let i = 1; i < points.length; i++) ctx.lineTo(points[i][0], points[i][1]);
    ctx.stroke();
  }
}
