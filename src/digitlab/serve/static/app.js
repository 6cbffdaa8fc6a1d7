// MLPaint: draw a digit, get live predictions from the digitlab REST API.
// Plain JS, no build step, nothing loaded from the network but this server.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const pad = $("pad"), ctx = pad.getContext("2d");
  const SIZE = pad.width;                 // logical canvas size sent to the API (280 x 280)
  const THROTTLE_MS = 60;                 // at most one live request per this interval
  const state = {
    strokes: [],          // [[ [x, y], ... ], ...] in canvas coordinates
    current: null,        // stroke being drawn
    pointerId: null,
    sample: null,         // {digit, offset, count, pixels} when a MNIST test image is shown
    explainDigit: null,   // digit clicked by the user, or null for "the predicted digit"
    inFlight: false, dirty: false, lastSent: 0, timer: 0, seq: 0,
    last: null,           // last response
  };

  // ---------- drawing ----------
  function penWidth() { return Number($("pen").value); }

  function redraw() {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, SIZE, SIZE);
    if (state.sample) {
      const img = ctx.createImageData(28, 28);
      state.sample.pixels.forEach((v, i) => {
        img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
      });
      const tmp = document.createElement("canvas"); tmp.width = tmp.height = 28;
      tmp.getContext("2d").putImageData(img, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(tmp, 0, 0, SIZE, SIZE);
    }
    ctx.strokeStyle = ctx.fillStyle = "#fff";
    ctx.lineCap = ctx.lineJoin = "round";
    for (const s of state.strokes) drawStroke(s.points, s.pen);
    $("hint").classList.toggle("hidden", state.strokes.length > 0 || !!state.sample);
  }

  function drawStroke(points, pen) {
    ctx.lineWidth = pen;
    if (points.length === 1) {
      ctx.beginPath(); ctx.arc(points[0][0], points[0][1], pen / 2, 0, 2 * Math.PI); ctx.fill();
      return;
    }
    ctx.beginPath(); ctx.moveTo(points[0][0], points[0][1]);
    for (let i = 1; i < points.length; i++) ctx.lineTo(points[i][0], points[i][1]);
    ctx.stroke();
  }

  function toCanvas(ev) {
    const r = pad.getBoundingClientRect();
    const clamp = (v) => Math.min(SIZE, Math.max(0, v));
    return [clamp(Math.round((ev.clientX - r.left) * SIZE / r.width * 10) / 10),
            clamp(Math.round((ev.clientY - r.top) * SIZE / r.height * 10) / 10)];
  }

  pad.addEventListener("pointerdown", (ev) => {
    if (state.pointerId !== null || (ev.pointerType === "mouse" && ev.button !== 0)) return;
    ev.preventDefault();
    if (state.sample) { state.sample = null; setStatus(""); }
    state.pointerId = ev.pointerId;
    pad.setPointerCapture(ev.pointerId);
    state.current = { points: [toCanvas(ev)], pen: penWidth() };
    state.strokes.push(state.current);
    redraw();
    schedulePredict();
  });
  pad.addEventListener("pointermove", (ev) => {
    if (ev.pointerId !== state.pointerId || !state.current) return;
    ev.preventDefault();
    const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
    for (const e of (events.length ? events : [ev])) {
      const p = toCanvas(e), pts = state.current.points, q = pts[pts.length - 1];
      if (Math.hypot(p[0] - q[0], p[1] - q[1]) >= 1) pts.push(p);
    }
    redraw();
    schedulePredict();
  });
  const endStroke = (ev) => {
    if (ev.pointerId !== state.pointerId) return;
    state.pointerId = null; state.current = null;
    predictNow();                       // once more when the stroke ends
  };
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);
  pad.addEventListener("contextmenu", (ev) => ev.preventDefault());

  function clearAll() {
    state.strokes = []; state.sample = null; state.explainDigit = null;
    redraw(); showEmpty("Draw something"); setStatus("");
  }
  function undo() {
    if (state.sample && !state.strokes.length) { clearAll(); return; }
    state.strokes.pop(); redraw();
    if (state.strokes.length) predictNow(); else showEmpty("Draw something");
  }
  $("clear").addEventListener("click", clearAll);
  $("undo").addEventListener("click", undo);
  $("pen").addEventListener("input", () => { $("pen-out").textContent = $("pen").value; });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") clearAll();
    else if ((ev.ctrlKey || ev.metaKey) && ev.key === "z") { ev.preventDefault(); undo(); }
  });

  // ---------- talking to the API: one request in flight, the newest drawing wins ----------
  function requestBody() {
    const body = { model: $("model").value || undefined, explain: state.explainDigit ?? true };
    if (state.sample && !state.strokes.length) body.pixels = state.sample.pixels;
    else {
      body.strokes = state.strokes.map((s) => s.points);
      body.width = SIZE; body.height = SIZE; body.pen_width = penWidth();
      // strokes drawn with different pens: send the average pen (the API takes one width)
      if (state.strokes.length) {
        body.pen_width = state.strokes.reduce((a, s) => a + s.pen, 0) / state.strokes.length;
      }
    }
    return body;
  }

  // body[data-busy] is "1" while a prediction is queued or in flight (tests wait for "0": the final answer).
  function updateBusy() {
    document.body.dataset.busy = state.inFlight || state.dirty || state.timer ? "1" : "0";
  }

  function schedulePredict() {
    const wait = THROTTLE_MS - (performance.now() - state.lastSent);
    if (state.timer) return;
    state.timer = setTimeout(() => { state.timer = 0; predictNow(); updateBusy(); }, Math.max(0, wait));
    updateBusy();
  }

  async function predictNow() {
    if (!state.strokes.length && !state.sample) return;
    if (state.inFlight) { state.dirty = true; updateBusy(); return; }
    state.inFlight = true; state.dirty = false; state.lastSent = performance.now(); updateBusy();
    const seq = ++state.seq;
    const t0 = performance.now();
    try {
      const res = await fetch("/v1/predict", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(requestBody()),
      });
      const data = await res.json().catch(() => ({ detail: `HTTP ${res.status}` }));
      if (!res.ok) throw new Error(data.detail || `HTTP ${res.status}`);
      if (seq === state.seq && (state.strokes.length || state.sample)) {
        show(data, performance.now() - t0);
        if ($("status").classList.contains("error")) setStatus("");   // keep informative lines (sample shown)
      }
    } catch (err) {
      setStatus(String(err.message || err), true);
    } finally {
      state.inFlight = false;
      if (state.dirty) predictNow();
      updateBusy();
    }
  }

  // ---------- showing results ----------
  const bars = [];
  for (let d = 0; d < 10; d++) {
    const li = document.createElement("li");
    li.className = "bar"; li.dataset.digit = String(d); li.tabIndex = 0;
    li.title = `Explain digit ${d}`;
    li.innerHTML = `<span class="d">${d}</span><span class="track"><span class="fill"></span></span>` +
                   `<span class="p">–</span><span class="s"></span>`;
    const pick = () => {
      state.explainDigit = state.explainDigit === d ? null : d;
      if (state.last) predictNow();
    };
    li.addEventListener("click", pick);
    li.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); pick(); } });
    $("bars").appendChild(li);
    bars.push(li);
  }

  function show(data, roundTripMs) {
    state.last = data;
    const big = $("digit");
    if (data.no_ink) { showEmpty("Nothing drawn yet"); return; }
    big.textContent = String(data.digit); big.classList.remove("empty");
    $("badge").textContent = String(data.digit);
    const p = data.probabilities[data.digit];
    $("confidence").textContent = `It's a ${data.digit} — ${(100 * p).toFixed(p > 0.999 ? 2 : 1)}% sure`;
    $("timing").textContent = `${data.model} · server ${data.elapsed_ms.toFixed(1)} ms · round trip ${roundTripMs.toFixed(0)} ms`;
    bars.forEach((li, d) => {
      li.classList.toggle("win", d === data.digit);
      li.classList.toggle("explained", data.explained_digit === d);
      li.querySelector(".fill").style.width = `${(100 * data.probabilities[d]).toFixed(1)}%`;
      li.querySelector(".p").textContent = `${(100 * data.probabilities[d]).toFixed(1)}%`;
      li.querySelector(".s").textContent = formatScore(data.scores[d]);
    });
    drawSeen(data.input);
    drawHeat(data.input, data.explanation, data.explained_digit, data.explanation_method);
  }

  function formatScore(s) {
    const a = Math.abs(s);
    return a >= 1e4 || (a < 1e-2 && a > 0) ? s.toExponential(1) : s.toFixed(2);
  }

  function showEmpty(text) {
    state.last = null;
    $("digit").textContent = "?"; $("digit").classList.add("empty"); $("badge").textContent = "";
    $("confidence").textContent = text; $("timing").textContent = "";
    bars.forEach((li) => {
      li.classList.remove("win", "explained");
      li.querySelector(".fill").style.width = "0";
      li.querySelector(".p").textContent = "–"; li.querySelector(".s").textContent = "";
    });
    drawSeen(null); drawHeat(null, null, null, null);
  }

  function drawSeen(input) {
    const c = $("seen").getContext("2d"), img = c.createImageData(28, 28);
    for (let i = 0; i < 784; i++) {
      const v = input ? input[i] : 0;
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
    }
    c.putImageData(img, 0, 0);
  }

  function drawHeat(input, expl, digit, method) {
    const c = $("heat").getContext("2d"), img = c.createImageData(28, 28);
    let max = 0;
    if (expl) for (const v of expl) max = Math.max(max, Math.abs(v));
    for (let i = 0; i < 784; i++) {
      const ink = input ? input[i] / 255 : 0;
      const base = 25 + 45 * ink;                 // the drawing, faintly, under the heat map
      let r = base, g = base, b = base;
      if (expl && max > 0) {
        const t = Math.min(1, Math.abs(expl[i]) / max) ** 0.6;
        if (expl[i] > 0) { r = base * (1 - t) + 54 * t; g = base * (1 - t) + 211 * t; b = base * (1 - t) + 153 * t; }
        else if (expl[i] < 0) { r = base * (1 - t) + 255 * t; g = base * (1 - t) + 93 * t; b = base * (1 - t) + 108 * t; }
      }
      img.data[4 * i] = r; img.data[4 * i + 1] = g; img.data[4 * i + 2] = b; img.data[4 * i + 3] = 255;
    }
    c.putImageData(img, 0, 0);
    $("heat-caption").innerHTML = digit === null || digit === undefined
      ? 'Explanation: <span class="pos">green</span> pixels speak for the digit, <span class="neg">red</span> against'
      : `Why <b>${digit}</b>${state.explainDigit === null ? " (the prediction)" : ""}: <span class="pos">green</span> for, ` +
        `<span class="neg">red</span> against · ${String(method).replace(/_/g, " ")}`;
  }

  function setStatus(text, error = false) {
    $("status").textContent = text; $("status").classList.toggle("error", error);
  }

  // ---------- models ----------
  async function loadModels() {
    try {
      const res = await fetch("/v1/models");
      const data = await res.json();
      if (!res.ok) throw new Error(data.detail || `HTTP ${res.status}`);
      const sel = $("model"); sel.innerHTML = "";
      for (const m of data.models) {
        const o = document.createElement("option");
        o.value = m.name;
        const acc = m.test_accuracy == null ? "" : ` · ${(100 * m.test_accuracy).toFixed(1)}%`;
        o.textContent = `${m.name}${m.family ? ` (${m.family})` : ""}${acc}`;
        if (m.name === data.default) o.selected = true;
        sel.appendChild(o);
      }
      if (!data.models.length) setStatus("No model available on the server: train one with digitlab train.", true);
    } catch (err) { setStatus(`Cannot list models: ${err.message || err}`, true); }
  }
  $("model").addEventListener("change", () => predictNow());

  // ---------- MNIST test samples ----------
  const sd = $("sample-digit");
  for (let d = 0; d < 10; d++) { const o = document.createElement("option"); o.value = o.textContent = String(d); sd.appendChild(o); }

  async function loadSample(digit, offset) {
    try {
      const res = await fetch(`/v1/samples?digit=${digit}&offset=${offset}`);
      const data = await res.json();
      if (!res.ok) throw new Error(data.detail || `HTTP ${res.status}`);
      state.sample = data; state.strokes = []; state.explainDigit = null;
      sd.value = String(data.digit);
      $("sample-offset").max = String(data.count - 1); $("sample-offset").value = String(data.offset);
      $("sample-out").textContent = String(data.offset);
      redraw(); setStatus(`MNIST test image #${data.index} (digit ${data.digit}, example ${data.offset + 1} of ${data.count})`);
      predictNow();
    } catch (err) { setStatus(String(err.message || err), true); }
  }
  $("random").addEventListener("click", () => {
    const digit = Math.floor(Math.random() * 10);
    loadSample(digit, Math.floor(Math.random() * 892));   // every digit has at least 892 test images
  });
  sd.addEventListener("change", () => loadSample(sd.value, 0));
  $("sample-offset").addEventListener("input", () => { $("sample-out").textContent = $("sample-offset").value; });
  $("sample-offset").addEventListener("change", () => loadSample(sd.value, $("sample-offset").value));

  redraw(); showEmpty("Draw something"); updateBusy(); loadModels();
})();
