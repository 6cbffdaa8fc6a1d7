// MLPaint: draw a digit, get live predictions from the digitlab REST API, or from the model run in this browser.
// Plain ES modules, no build step, nothing loaded from the network but this server (or the static site).
import { CompareView } from "./compare.js";
import { CorrectionBar } from "./correct.js";
import { $, setStatus } from "./dom.js";
import { getJSON, Live } from "./live.js";
import { NumberMode } from "./number.js";
import { Pad } from "./pad.js";
import { ProfileControl } from "./profile.js";
import { ResultView } from "./result.js";
import { Runner, site } from "./where.js";

const state = {
  sample: null,         // {digit, offset, count, index, pixels} when an MNIST test image is shown
  explainDigit: null,   // digit clicked by the user, or null for "the predicted digit"
};

const pad = new Pad($("pad"), {
  penWidth: () => Number($("pen").value),
  onChange: (kind) => {
    if (kind === "start" && state.sample) { state.sample = null; pad.background = null; pad.redraw(); setStatus(""); }
    updateHint();
    if (kind === "end") { live.now(); compare.now(); } else { live.schedule(); compare.schedule(); }
  },
});

const view = new ResultView({
  onPick: (d) => {
    state.explainDigit = state.explainDigit === d ? null : d;
    if (view.last) live.now();
  },
});

function drawing() { return !pad.empty || !!state.sample; }

// The drawing as the API takes it (pixels of a shown sample, or the strokes), with the profile if one is chosen.
function inputBody() {
  const body = profile.name ? { profile: profile.name } : {};
  if (state.sample && pad.empty) body.pixels = state.sample.pixels;
  else Object.assign(body, { strokes: pad.points(), width: pad.width, height: pad.height, pen_width: pad.meanPen() });
  return body;
}

function requestBody() {
  return { ...inputBody(), model: $("model").value || undefined, explain: state.explainDigit ?? true };
}

const runner = new Runner({ model: () => $("model").value, onChange: () => { if (drawing()) live.now(); } });

const live = new Live({
  send: () => (drawing() ? runner.predict(requestBody()) : null),
  onAnswer: (data, ms) => {
    if (!drawing()) return;
    view.show(data, ms, state.explainDigit !== null);
    if (data.profile_drawings) $("timing").textContent += ` · adapted to ${data.profile} (${data.profile_drawings})`;
    corrections.enable(!data.no_ink, data.digit);
    if ($("status").classList.contains("error")) setStatus("");   // keep informative lines (sample shown)
  },
  onError: (err) => setStatus(String(err.message || err), true),
});

// ---------- corrections, profile, compare ----------
const profile = new ProfileControl({ onChange: () => { if (drawing()) { live.now(); compare.now(); } } });
const corrections = new CorrectionBar({
  body: () => (drawing() ? { ...inputBody(), model: $("model").value || undefined } : null),
  onStored: (data) => {
    if (data.profile && data.profile === profile.name) profile.show(data.count);
    live.now(); compare.now();   // read again: under the profile, the answer has learnt from it
  },
});
const compare = new CompareView({ body: () => (drawing() ? inputBody() : null) });

function updateHint() { $("hint").classList.toggle("hidden", !pad.empty || !!state.sample); }

function clearAll() {
  pad.clear(); state.sample = null; state.explainDigit = null; live.cancel();
  updateHint(); view.empty("Draw something"); setStatus(""); corrections.enable(false); compare.clear();
}
function undo() {
  if (state.sample && pad.empty) { clearAll(); return; }
  pad.undo(); updateHint();
  if (!pad.empty) { live.now(); compare.now(); } else {
    live.cancel(); view.empty("Draw something"); corrections.enable(false); compare.clear();
  }
}
$("clear").addEventListener("click", clearAll);
$("undo").addEventListener("click", undo);
$("pen").addEventListener("input", () => { $("pen-out").textContent = $("pen").value; });
const number = new NumberMode({ model: () => $("model").value || undefined });
function setMode(mode) {
  const isNumber = mode === "number";
  $("digit-view").hidden = isNumber; $("number-view").hidden = !isNumber;
  $("mode-digit").setAttribute("aria-selected", String(!isNumber));
  $("mode-number").setAttribute("aria-selected", String(isNumber));
  document.body.dataset.mode = mode;
}
$("mode-digit").addEventListener("click", () => setMode("digit"));
$("mode-number").addEventListener("click", () => setMode("number"));
if (site.static) $("mode-number").hidden = true;   // reading a number needs the server (POST /v1/read)
else if (new URLSearchParams(location.search).get("mode") === "number") setMode("number");

document.addEventListener("keydown", (ev) => {
  if (document.body.dataset.mode === "number") { number.key(ev); return; }
  if (ev.key === "Escape") clearAll();
  else if ((ev.ctrlKey || ev.metaKey) && ev.key === "z") { ev.preventDefault(); undo(); }
});

// ---------- models ----------
async function loadModels() {
  try {
    const data = await getJSON("/v1/models");
    const sel = $("model"); sel.innerHTML = "";
    for (const m of data.models) {
      const o = document.createElement("option");
      o.value = m.name;
      const acc = m.test_accuracy == null ? "" : ` · ${(100 * m.test_accuracy).toFixed(1)}%`;
      o.textContent = `${m.name}${m.family ? ` (${m.family})` : ""}${acc}`;
      if (m.name === data.default) o.selected = true;
      sel.appendChild(o);
    }
    compare.setModels(data.served && data.served.length ? data.served : [data.default]);
    if (!data.models.length) setStatus("No model available on the server: train one with digitlab train.", true);
  } catch (err) { setStatus(`Cannot list models: ${err.message || err}`, true); }
}
$("model").addEventListener("change", () => { live.now(); number.refresh(); });

// ---------- MNIST test samples ----------
const sd = $("sample-digit");
for (let d = 0; d < 10; d++) {
  const o = document.createElement("option"); o.value = o.textContent = String(d); sd.appendChild(o);
}

async function loadSample(digit, offset) {
  try {
    const data = await getJSON(`/v1/samples?digit=${digit}&offset=${offset}`);
    state.sample = data; state.explainDigit = null;
    pad.strokes = []; pad.background = data.pixels; pad.redraw(); updateHint();
    sd.value = String(data.digit);
    $("sample-offset").max = String(data.count - 1); $("sample-offset").value = String(data.offset);
    $("sample-out").textContent = String(data.offset);
    setStatus(`MNIST test image #${data.index} (digit ${data.digit}, example ${data.offset + 1} of ${data.count})`);
    live.now(); compare.now();
  } catch (err) { setStatus(String(err.message || err), true); }
}
$("random").addEventListener("click", () => {
  const digit = Math.floor(Math.random() * 10);
  loadSample(digit, Math.floor(Math.random() * 892));   // every digit has at least 892 test images
});
sd.addEventListener("change", () => loadSample(sd.value, 0));
$("sample-offset").addEventListener("input", () => { $("sample-out").textContent = $("sample-offset").value; });
$("sample-offset").addEventListener("change", () => loadSample(sd.value, $("sample-offset").value));

pad.redraw(); updateHint(); view.empty("Draw something");
if (site.static) runner.staticPage(); else loadModels();
