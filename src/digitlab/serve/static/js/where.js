// Where the model runs: on the server (POST /v1/predict) or in this browser (browser.js), chosen by the
// "Runs on" toggle; and the static site of `digitlab export-page`, which has no server at all.
//
// The static site's index.html carries <script type="application/json" id="digitlab-site">
// {"mode": "static", "model": {"name", "url", "family", "test_accuracy"}}; the page served by
// `digitlab serve` has none. Modules that call the server check `site.static` first.
import { $, setStatus } from "./dom.js";
import { postJSON } from "./live.js";

function readSite() {
  const el = document.getElementById("digitlab-site");
  if (!el) return { static: false, model: null };
  const data = JSON.parse(el.textContent);
  return { static: data.mode === "static", model: data.model || null };
}

export const site = readSite();
const STORE = "digitlab.where";

export class Runner {
  // model(): the chosen model's name; onChange(): the place changed (predict again)
  constructor({ model, onChange }) {
    this.model = model; this.onChange = onChange;
    this.loaded = new Map();   // model name -> Promise of a BrowserModel
    this.radios = [...document.querySelectorAll('input[name="where"]')];
    for (const r of this.radios) r.addEventListener("change", () => this.choose(r.value));
    let saved = null;
    try { saved = localStorage.getItem(STORE); } catch { /* storage may be off */ }
    if (site.static) {
      this.radios.find((r) => r.value === "server").disabled = true;
      this.set("browser");
    } else {
      this.set(saved === "browser" ? "browser" : "server");
    }
  }

  get where() { return document.body.dataset.where; }

  set(where) {
    document.body.dataset.where = where;
    for (const r of this.radios) r.checked = r.value === where;
  }

  choose(where) {
    this.set(where);
    try { localStorage.setItem(STORE, where); } catch { /* storage may be off */ }
    if (where === "browser") this.browserModel().catch(() => {});   // start loading now
    this.onChange();
  }

  // The BrowserModel of the chosen model, loaded once.
  browserModel() {
    const name = this.model();
    if (!this.loaded.has(name)) {
      const url = site.static ? site.model.url : `/v1/models/${encodeURIComponent(name)}/onnx`;
      setStatus(`Loading ${name} into this browser…`);
      const pending = import("./browser.js").then(({ BrowserModel }) => BrowserModel.load(url, name));
      pending.then(() => { if ($("status").textContent.startsWith("Loading")) setStatus(""); },
                   () => this.loaded.delete(name));
      this.loaded.set(name, pending);
    }
    return this.loaded.get(name);
  }

  // The answer to a /v1/predict body, from wherever the model runs. A model that cannot run in the browser
  // sends the page back to the server, saying why.
  async predict(body) {
    if (this.where !== "browser") return postJSON("/v1/predict", body);
    let model;
    try {
      model = await this.browserModel();
    } catch (err) {
      if (site.static) throw err;
      this.set("server");
      setStatus(`${err.message || err}: answering from the server`);   // informative: stays after the answer
      return postJSON("/v1/predict", body);
    }
    const { predictHere } = await import("./browser.js");
    return predictHere(model, body);
  }

  // The static site: its one model, and nothing that needs the server (MNIST samples, the API docs).
  staticPage() {
    const sel = $("model"), m = site.model, o = document.createElement("option");
    const acc = m.test_accuracy == null ? "" : ` · ${(100 * m.test_accuracy).toFixed(1)}%`;
    o.value = m.name; o.textContent = `${m.name}${m.family ? ` (${m.family})` : ""}${acc}`; o.selected = true;
    sel.replaceChildren(o);
    for (const el of document.querySelectorAll("[data-needs-server]")) el.hidden = true;
  }
}
