// "Wrong? It's a …": the ten digits under the answer; one click stores the drawing with its true label
// (POST /v1/corrections), for the user's profile and for training the next models.
import { $, setStatus } from "./dom.js";
import { postJSON } from "./live.js";

export class CorrectionBar {
  // body(): the request for the current drawing (its input, model and profile), or null when nothing is drawn;
  // onStored(answer): the server stored it ({id, profile, count, label, predicted, model, stored})
  constructor({ body, onStored }) {
    Object.assign(this, { body, onStored });
    this.bar = $("correct"); this.buttons = [];
    for (let d = 0; d < 10; d++) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = String(d); b.dataset.digit = String(d);
      b.title = `Store this drawing as a ${d}`;
      b.addEventListener("click", () => this.submit(d));
      $("correct-digits").appendChild(b);
      this.buttons.push(b);
    }
    this.enable(false);
  }

  // Offered while there is an answer to correct; `digit` (the answer) is marked.
  enable(on, digit = null) {
    this.bar.classList.toggle("off", !on);
    this.buttons.forEach((b, d) => { b.disabled = !on; b.classList.toggle("said", on && d === digit); });
    if (!on) $("correct-done").textContent = "";
  }

  async submit(digit) {
    const body = this.body();
    if (!body) return;
    this.buttons.forEach((b) => { b.disabled = true; });
    this.bar.dataset.busy = "1";
    try {
      const data = await postJSON("/v1/corrections", { ...body, label: digit });
      $("correct-done").textContent = `✓ stored as a ${data.label}`;
      const who = data.profile ? `profile ${data.profile} now has ${data.count} drawing${data.count === 1 ? "" : "s"}`
                               : "no profile: it is kept to train the next models";
      setStatus(`Thanks! Stored as a ${data.label} (${who}).` +
                (data.stored === "staged" ? " The store is busy: it is safe on disk and is added soon." : ""));
      this.onStored(data);
    } catch (err) {
      setStatus(`Cannot store the correction: ${err.message || err}`, true);
    } finally {
      this.buttons.forEach((b) => { b.disabled = false; });
      this.bar.dataset.busy = "0";
    }
  }
}
