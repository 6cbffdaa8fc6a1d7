// The compare view: every model the server compares (GET /v1/models `served`), its answer and top probability
// for the current drawing, side by side and live. Each model has its own one-in-flight requests, so the fast
// ones answer at once and the slow ones (kernel SVMs, trees) as they come; the fastest are listed first.
import { $ } from "./dom.js";
import { Live, postJSON } from "./live.js";

export class CompareView {
  // body(): the request for the current drawing (input, profile), or null when nothing is drawn
  constructor({ body }) {
    this.body = body;
    this.section = $("compare"); this.list = $("compare-list"); this.toggle = $("compare-toggle");
    this.cards = [];   // [{name, li, live, ms}]
    this.open = false;
    this.toggle.addEventListener("click", () => this.setOpen(!this.open));
  }

  setModels(names) {
    this.list.innerHTML = ""; this.cards = [];
    for (const name of names) {
      const li = document.createElement("li");
      li.className = "cmp"; li.dataset.model = name; li.dataset.busy = "0";
      li.innerHTML = `<span class="name"></span><span class="digit">–</span><span class="p"></span>` +
                     `<span class="ms"></span>`;
      li.querySelector(".name").textContent = name;
      const card = { name, li, ms: null };
      card.live = new Live({
        busyOn: li,
        send: () => {
          const body = this.open ? this.body() : null;
          return body ? postJSON("/v1/predict", { ...body, model: name, explain: false }) : null;
        },
        onAnswer: (data) => this.showAnswer(card, data),
        onError: (err) => { li.classList.add("error"); li.querySelector(".digit").textContent = "!";
                            li.querySelector(".p").textContent = String(err.message || err); },
      });
      this.list.appendChild(li);
      this.cards.push(card);
    }
    $("compare-hint").hidden = names.length > 1;
  }

  setOpen(open) {
    this.open = open;
    this.section.hidden = !open;
    this.toggle.setAttribute("aria-pressed", String(open));
    if (open) this.now(); else this.cards.forEach((c) => c.live.cancel());
  }

  showAnswer(card, data) {
    const li = card.li;
    li.classList.remove("error");
    if (data.no_ink) { this.blank(card); return; }
    const p = data.probabilities[data.digit];
    card.ms = card.ms === null ? data.elapsed_ms : 0.7 * card.ms + 0.3 * data.elapsed_ms;
    li.querySelector(".digit").textContent = String(data.digit);
    li.querySelector(".p").textContent = `${(100 * p).toFixed(1)}%`;
    li.querySelector(".ms").textContent = `${data.elapsed_ms.toFixed(1)} ms`;
    li.dataset.digit = String(data.digit);
  }

  blank(card) {
    card.li.querySelector(".digit").textContent = "–"; card.li.querySelector(".p").textContent = "";
    card.li.querySelector(".ms").textContent = ""; delete card.li.dataset.digit;
  }

  // While drawing: each model asks again as soon as its last answer is in.
  schedule() { if (this.open) this.cards.forEach((c) => c.live.schedule()); }

  // A stroke ended or the drawing changed: the fastest models first, then every model asks now.
  now() {
    if (!this.open) return;
    const known = this.cards.filter((c) => c.ms !== null).sort((a, b) => a.ms - b.ms);
    const order = [...known, ...this.cards.filter((c) => c.ms === null)];
    order.forEach((c) => this.list.appendChild(c.li));
    order.forEach((c) => c.live.now());
  }

  clear() { this.cards.forEach((c) => { c.live.cancel(); this.blank(c); }); }
}
