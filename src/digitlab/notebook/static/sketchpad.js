// digitlab's sketchpad widget (anywidget front end): draw with mouse, pen or finger; the kernel predicts.
//
// The page only draws and records strokes, in the canvas's own coordinates (size x size, whatever size the
// canvas is shown at), like MLPaint's pad.js. The strokes go to the kernel while a stroke is drawn (throttled,
// at most one update waiting: `_asked` counts updates, the kernel answers with `_answered`) and once more when
// it ends; the kernel renders them like MLPaint, predicts, explains, and sends back `prediction`, `_input`
// (the 28x28 image the model saw) and `_explanation`. Nothing is fetched from the network.

const THROTTLE_MS = 50;     // at most one update this often while drawing
const STALE_MS = 3000;      // an update unanswered this long (kernel busy or restarted) no longer holds others back

const clone = (strokes) => strokes.map((s) => s.map((p) => [p[0], p[1]]));

function el(tag, cls, parent, attrs = {}) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function render({ model, el: root }) {
  const size = model.get("size");
  root.classList.add("digitlab-sketchpad");
  const left = el("div", "dl-left", root), right = el("div", "dl-right", root);

  const canvas = el("canvas", "dl-canvas", left, { width: size, height: size, "aria-label": "Draw a digit here" });
  const ctx = canvas.getContext("2d");
  const tools = el("div", "dl-tools", left);
  const clearBtn = el("button", "dl-clear", tools, { type: "button" }); clearBtn.textContent = "Clear";
  const undoBtn = el("button", "dl-undo", tools, { type: "button" }); undoBtn.textContent = "Undo";
  const penLabel = el("label", "dl-pen", tools); penLabel.textContent = "Pen ";
  const pen = el("input", "", penLabel, { type: "range", min: "6", max: "40", step: "1", "aria-label": "Pen width" });
  const status = el("div", "dl-status", left, { role: "status" });

  const head = el("div", "dl-head", right);
  const digit = el("div", "dl-digit", head); digit.textContent = "?";
  const modelName = el("div", "dl-model", head);
  const bars = el("ol", "dl-bars", right);
  const small = el("div", "dl-small", right);
  const seenFig = el("figure", "", small), heatFig = el("figure", "", small);
  const seen = el("canvas", "dl-seen", seenFig, { width: 28, height: 28, "aria-label": "The 28x28 image the model saw" });
  el("figcaption", "", seenFig).textContent = "what the model saw";
  const heat = el("canvas", "dl-heat", heatFig, { width: 28, height: 28, "aria-label": "Explanation" });
  const heatCaption = el("figcaption", "", heatFig);

  // ---------------------------------------------------------------------------------------------- drawing
  let strokes = clone(model.get("strokes") || []);
  let current = null, pointerId = null;

  function toCanvas(ev) {
    const r = canvas.getBoundingClientRect();
    const clamp = (v) => Math.min(size, Math.max(0, v));
    return [clamp(Math.round((ev.clientX - r.left) * size / r.width * 10) / 10),
            clamp(Math.round((ev.clientY - r.top) * size / r.height * 10) / 10)];
  }

  function redraw() {
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, size, size);
    ctx.strokeStyle = ctx.fillStyle = "#fff"; ctx.lineCap = ctx.lineJoin = "round";
    const w = model.get("pen_width");
    ctx.lineWidth = w;
    for (const pts of strokes) {
      if (!pts.length) continue;
      if (pts.length === 1) {
        ctx.beginPath(); ctx.arc(pts[0][0], pts[0][1], w / 2, 0, 2 * Math.PI); ctx.fill(); continue;
      }
      ctx.beginPath(); ctx.moveTo(pts[0][0], pts[0][1]);
      for (let i = 1; i < pts.length; i++) ctx.lineTo(pts[i][0], pts[i][1]);
      ctx.stroke();
    }
    canvas.classList.toggle("dl-empty", strokes.length === 0);
  }

  canvas.addEventListener("pointerdown", (ev) => {
    if (pointerId !== null || (ev.pointerType === "mouse" && ev.button !== 0)) return;
    ev.preventDefault();
    pointerId = ev.pointerId;
    canvas.setPointerCapture(ev.pointerId);
    current = [toCanvas(ev)];
    strokes.push(current);
    redraw(); schedule();
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (ev.pointerId !== pointerId || !current) return;
    ev.preventDefault();
    const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [];
    for (const e of (events.length ? events : [ev])) {
      const p = toCanvas(e), q = current[current.length - 1];
      if (Math.hypot(p[0] - q[0], p[1] - q[1]) >= 1) current.push(p);
    }
    redraw(); schedule();
  });
  const up = (ev) => {
    if (ev.pointerId !== pointerId) return;
    pointerId = null; current = null;
    send();  // once more when the stroke ends
  };
  canvas.addEventListener("pointerup", up);
  canvas.addEventListener("pointercancel", up);
  canvas.addEventListener("contextmenu", (ev) => ev.preventDefault());

  clearBtn.addEventListener("click", () => { strokes = []; redraw(); send(); });
  undoBtn.addEventListener("click", () => { strokes.pop(); redraw(); send(); });
  pen.value = String(model.get("pen_width"));
  pen.addEventListener("input", () => { model.set("pen_width", Number(pen.value)); model.save_changes(); redraw(); });

  // ------------------------------------------------------------------------------ talking to the kernel
  let dirty = false, timer = 0, sentAt = -Infinity;
  const inFlight = () => model.get("_asked") !== model.get("_answered") && performance.now() - sentAt < STALE_MS;

  function updateBusy() { root.dataset.busy = inFlight() || dirty || timer ? "1" : "0"; }

  function send() {
    if (timer) { clearTimeout(timer); timer = 0; }
    if (inFlight()) { dirty = true; updateBusy(); return; }
    dirty = false; sentAt = performance.now();
    model.set("strokes", clone(strokes));
    model.set("_asked", model.get("_asked") + 1);
    model.save_changes();
    updateBusy();
  }

  function schedule() {
    if (timer) return;
    timer = setTimeout(() => { timer = 0; send(); }, Math.max(0, THROTTLE_MS - (performance.now() - sentAt)));
    updateBusy();
  }

  const handlers = [];
  const on = (name, fn) => { model.on(`change:${name}`, fn); handlers.push([`change:${name}`, fn]); };
  on("_answered", () => { if (dirty) send(); updateBusy(); });
  on("strokes", () => {
    // strokes set from Python (or the kernel's echo): take them unless newer local ones are on their way
    if (pointerId !== null || dirty || timer) return;
    strokes = clone(model.get("strokes") || []);
    redraw();
  });
  on("pen_width", () => { pen.value = String(model.get("pen_width")); redraw(); });

  // ------------------------------------------------------------------------------------------ the answer
  let barItems = [];
  function buildBars(classes) {
    bars.innerHTML = "";
    barItems = classes.map((c) => {
      const li = el("li", "dl-bar", bars, { "data-digit": String(c), title: `Explain ${c}` });
      el("span", "dl-d", li).textContent = String(c);
      el("span", "dl-fill", el("span", "dl-track", li));
      el("span", "dl-p", li).textContent = "–";
      li.addEventListener("click", () => {
        const picked = model.get("explain_digit");
        model.set("explain_digit", picked === c ? null : c);
        model.save_changes();
      });
      return li;
    });
  }

  function showSeen(input) {
    const c = seen.getContext("2d"), img = c.createImageData(28, 28);
    for (let i = 0; i < 784; i++) {
      const v = input.length === 784 ? input[i] : 0;
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
    }
    c.putImageData(img, 0, 0);
  }

  // The explanation over the faint input, as MLPaint draws it: green pushes towards the digit, red away.
  function showHeat(input, expl) {
    const c = heat.getContext("2d"), img = c.createImageData(28, 28);
    const values = expl ? expl.values : null;
    let max = 0;
    if (values) for (const v of values) max = Math.max(max, Math.abs(v));
    for (let i = 0; i < 784; i++) {
      const ink = input.length === 784 ? input[i] / 255 : 0;
      const base = 25 + 45 * ink;
      let r = base, g = base, b = base;
      if (values && max > 0) {
        const t = Math.min(1, Math.abs(values[i]) / max) ** 0.6;
        if (values[i] > 0) { r = base * (1 - t) + 54 * t; g = base * (1 - t) + 211 * t; b = base * (1 - t) + 153 * t; }
        else if (values[i] < 0) { r = base * (1 - t) + 255 * t; g = base * (1 - t) + 93 * t; b = base * (1 - t) + 108 * t; }
      }
      img.data[4 * i] = r; img.data[4 * i + 1] = g; img.data[4 * i + 2] = b; img.data[4 * i + 3] = 255;
    }
    c.putImageData(img, 0, 0);
    heatCaption.innerHTML = expl
      ? `why <b>${expl.digit}</b>: <span class="dl-pos">green</span> for, <span class="dl-neg">red</span> against`
      : "the explanation";
  }

  function show() {
    const pred = model.get("prediction"), classes = model.get("_classes");
    if (barItems.length !== classes.length) buildBars(classes);
    modelName.textContent = model.get("model_name");
    status.textContent = model.get("status");
    const expl = model.get("_explanation");
    root.dataset.digit = pred ? String(pred.digit) : "";
    digit.textContent = pred ? String(pred.digit) : "?";
    digit.classList.toggle("dl-none", !pred);
    barItems.forEach((li, k) => {
      const p = pred ? pred.probabilities[k] : 0;
      li.classList.toggle("dl-win", !!pred && pred.classes[k] === pred.digit);
      li.classList.toggle("dl-explained", !!expl && expl.digit === classes[k]);
      li.querySelector(".dl-fill").style.width = `${(100 * p).toFixed(1)}%`;
      li.querySelector(".dl-p").textContent = pred ? `${(100 * p).toFixed(1)}%` : "–";
    });
    const input = model.get("_input") || [];
    showSeen(input); showHeat(input, expl);
  }

  for (const name of ["prediction", "_input", "_explanation", "status", "_classes", "model_name"]) on(name, show);
  redraw(); show(); updateBusy();
  return () => {  // the view is removed
    if (timer) clearTimeout(timer);
    for (const [event, fn] of handlers) model.off(event, fn);
  };
}

export default { render };
