// Predicting in this browser: normalise.js makes the 28x28 image, ONNX Runtime Web runs the model.
//
// ONNX Runtime Web is loaded (from the vendored copy beside this module, never a CDN) only when the page first
// predicts in the browser. Models are ONNX files as digitlab exports them: input `pixels`, uint8 [N, 784] or
// [N, 1, 28, 28]; outputs `probabilities` float32 [N, classes] and `label` int64 [N].
import { NoInkError, renderStrokes } from "./normalise.js";

const VENDOR = new URL("../vendor/onnxruntime-web/", import.meta.url);
let runtime = null;

// The ONNX Runtime Web module, imported once: the wasm (CPU) backend on one thread, which needs no
// cross-origin isolation and so runs on any static host.
export function onnxRuntime() {
  runtime ??= import(new URL("ort.wasm.bundle.min.mjs", VENDOR).href).then((ort) => {
    ort.env.wasm.wasmPaths = { wasm: new URL("ort-wasm-simd-threaded.wasm", VENDOR).href };   // its loader is bundled
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    ort.env.logLevel = "error";
    return ort;
  });
  return runtime;
}

export class BrowserModel {
  // Fetch an ONNX model and make its session; throws an Error saying what went wrong.
  static async load(url, name) {
    const [ort, res] = await Promise.all([onnxRuntime(), fetch(url)]);
    if (!res.ok) {
      const data = await res.json().catch(() => ({}));
      throw new Error(data.detail || `cannot fetch the model ${name} for this browser: HTTP ${res.status}`);
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
    return new BrowserModel(ort, session, name);
  }

  constructor(ort, session, name) {
    this.ort = ort; this.session = session; this.name = name;
    this.input = session.inputNames.includes("pixels") ? "pixels" : session.inputNames[0];
    const meta = (session.inputMetadata || []).find((m) => m.name === this.input);
    this.layout = meta && Array.isArray(meta.shape) && meta.shape.length === 4 ? "image" : "flat";
    this.outputs = ["probabilities", "label"].filter((o) => session.outputNames.includes(o));
    if (!this.outputs.includes("probabilities")) throw new Error(`model ${name} has no output "probabilities"`);
  }

  // pixels: Uint8Array of n x 784 (row-major 28x28 images) -> {probabilities: Float32Array(n x k), labels, k}
  async predict(pixels) {
    const n = pixels.length / 784;
    const dims = this.layout === "image" ? [n, 1, 28, 28] : [n, 784];
    const out = await this.session.run({ [this.input]: new this.ort.Tensor("uint8", pixels, dims) }, this.outputs);
    const p = out.probabilities, k = p.dims[1];
    const labels = out.label ? Array.from(out.label.data, Number) : null;
    return { probabilities: p.data, labels, k };
  }
}

function argmax(a) {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

// The page's answer for a /v1/predict-style body ({strokes, width, height, pen_width} or {pixels}), computed
// here: the fields of the server's answer that the page shows, with `where: "browser"`.
export async function predictHere(model, body) {
  const t0 = performance.now();
  const nothing = () => ({ no_ink: true, digit: null, probabilities: null, scores: null, model: model.name,
                           input: new Array(784).fill(0), elapsed_ms: performance.now() - t0, where: "browser" });
  let pixels;
  if (body.pixels) {
    pixels = Uint8Array.from(body.pixels);
  } else {
    try {
      pixels = renderStrokes(body.strokes, body.width, body.height, body.pen_width ?? null);
    } catch (err) {
      if (err instanceof NoInkError) return nothing();
      throw err;
    }
  }
  if (!pixels.some((v) => v > 0)) return nothing();
  const { probabilities, labels } = await model.predict(pixels);
  const probs = Array.from(probabilities);
  return { no_ink: false, digit: labels ? labels[0] : argmax(probs), probabilities: probs, scores: null,
           input: Array.from(pixels), model: model.name, elapsed_ms: performance.now() - t0, where: "browser" };
}
