// Number mode: write a whole number on a wide canvas; each digit's box and answer are drawn live over the
// drawing (POST /v1/read) and the number is shown in large type. A piece that does not look like a digit is
// boxed in red with a "?" and the page says so.
import { $ } from "./dom.js";
import { Live, postJSON } from "./live.js";
import { Pad } from "./pad.js";

export class NumberMode {
  // model(): the model name picked on the page (or undefined for the server's default)
  constructor({ model }) {
    this.model = model;
    this.last = null;
    this.overlay = $("nboxes").getContext("2d");
    this.pad = new Pad($("npad"), {
      penWidth: () => Number($("npen").value),
      onChange: (kind) => {
        this.updateHint();
        if (kind === "end") this.live.now(); else this.live.schedule();
        if (kind === "start") this.drawBoxes(this.last);   // boxes stay while the next stroke is drawn
      },
    });
    this.live = new Live({
      send: () => (this.pad.empty ? null : postJSON("/v1/read", this.body())),
      onAnswer: (data, ms) => { if (!this.pad.empty) this.show(data, ms); },
      onError: (err) => this.status(String(err.message || err), true),
      throttleMs: 80,
    });
    $("nclear").addEventListener("click", () => this.clear());
    $("nundo").addEventListener("click", () => this.undo());
    $("npen").addEventListener("input", () => { $("npen-out").textContent = $("npen").value; });
    this.pad.redraw(); this.updateHint(); this.empty();
  }

  body() {
    return { model: this.model(), strokes: this.pad.points(), width: this.pad.width, height: this.pad.height,
             pen_width: this.pad.meanPen() };
  }

  refresh() { if (!this.pad.empty) this.live.now(); }

  key(ev) {
    if (ev.key === "Escape") this.clear();
    else if ((ev.ctrlKey || ev.metaKey) && ev.key === "z") { ev.preventDefault(); this.undo(); }
  }

  clear() { this.pad.clear(); this.live.cancel(); this.updateHint(); this.empty(); }

  undo() {
    this.pad.undo(); this.updateHint();
    if (this.pad.empty) { this.live.cancel(); this.empty(); } else this.live.now();
  }

  updateHint() { $("nhint").classList.toggle("hidden", !this.pad.empty); }

  status(text, error = false) {
    $("nstatus").textContent = text; $("nstatus").classList.toggle("error", error);
  }

  empty() {
    this.last = null;
    $("number").textContent = "–"; $("number").classList.add("empty");
    $("nnote").textContent = "Write a number"; $("ntiming").textContent = "";
    this.drawBoxes(null); this.status("");
  }

  // data: a /v1/read answer
  show(data, roundTripMs) {
    this.last = data;
    if (data.no_ink || !data.digits.length) { this.empty(); $("nnote").textContent = "Nothing drawn yet"; return; }
    const odd = data.digits.filter((d) => d.not_a_digit).length;
    const big = $("number");
    big.classList.remove("empty");
    big.innerHTML = "";
    for (const d of data.digits) {
      const span = document.createElement("span");
      span.textContent = d.not_a_digit ? "?" : String(d.digit);
      if (d.not_a_digit) { span.className = "odd"; span.title = `doesn't look like a digit (best guess ${d.digit})`; }
      big.appendChild(span);
    }
    big.dataset.text = data.text;
    $("nnote").textContent = odd
      ? `That doesn't look like a digit: ${odd === 1 ? "the part" : `${odd} parts`} marked ?`
      : `${data.digits.length} digit${data.digits.length === 1 ? "" : "s"}: ${data.text}`;
    $("ntiming").textContent = `${data.model} · server ${data.elapsed_ms.toFixed(1)} ms · ` +
                               `round trip ${roundTripMs.toFixed(0)} ms`;
    this.drawBoxes(data);
    if ($("nstatus").classList.contains("error")) this.status("");
  }

  // Each digit's box and answer over the drawing (the overlay canvas has the pad's coordinates).
  drawBoxes(data) {
    const c = this.overlay, w = c.canvas.width, h = c.canvas.height;
    c.clearRect(0, 0, w, h);
    if (!data || data.no_ink) return;
    c.lineWidth = 2; c.font = "bold 26px system-ui, sans-serif"; c.textBaseline = "bottom";
    for (const d of data.digits) {
      const [x0, y0, x1, y1] = d.box, color = d.not_a_digit ? "#ff5d6c" : "#ffb84d";
      c.strokeStyle = color; c.setLineDash(d.not_a_digit ? [6, 4] : []);
      c.strokeRect(x0, y0, x1 - x0, y1 - y0);
      const label = d.not_a_digit ? "?" : `${d.digit}`, p = d.probabilities[d.digit];
      const text = d.not_a_digit ? label : `${label} ${(100 * p).toFixed(0)}%`;
      const tw = c.measureText(text).width + 10, ty = Math.max(y0, 30);
      c.fillStyle = "rgba(15, 20, 32, .85)"; c.fillRect(x0, ty - 30, tw, 30);
      c.fillStyle = color; c.fillText(text, x0 + 5, ty - 2);
    }
    c.setLineDash([]);
  }
}
