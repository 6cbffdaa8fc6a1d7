// Live requests while drawing: at most one in flight, throttled, and the newest drawing wins.
//
// body[data-busy] is "1" while a request is queued or in flight (tests wait for "0": the final answer).
export class Live {
  // send(): Promise of the answer for the current drawing, or null when there is nothing to send;
  // onAnswer(data, roundTripMs) and onError(err) are called for the newest request only;
  // busyOn: the element whose data-busy says so (another Live than the page's main one keeps its own).
  constructor({ send, onAnswer, onError, throttleMs = 60, busyOn = document.body }) {
    Object.assign(this, { send, onAnswer, onError, throttleMs, busyOn });
    this.inFlight = false; this.dirty = false; this.lastSent = 0; this.timer = 0; this.seq = 0;
    this.updateBusy();
  }

  updateBusy() {
    this.busyOn.dataset.busy = this.inFlight || this.dirty || this.timer ? "1" : "0";
  }

  // Ask for an answer soon (while drawing): no more often than once per throttleMs.
  schedule() {
    const wait = this.throttleMs - (performance.now() - this.lastSent);
    if (this.timer) return;
    this.timer = setTimeout(() => { this.timer = 0; this.now(); this.updateBusy(); }, Math.max(0, wait));
    this.updateBusy();
  }

  // Ask for an answer now (a stroke ended, a setting changed); queued if one is in flight.
  async now() {
    if (this.inFlight) { this.dirty = true; this.updateBusy(); return; }
    const seq = ++this.seq, t0 = performance.now();
    let pending;
    try { pending = this.send(); } catch (err) { this.onError(err); return; }
    if (!pending) return;
    this.inFlight = true; this.dirty = false; this.lastSent = t0; this.updateBusy();
    try {
      const data = await pending;
      if (seq === this.seq) this.onAnswer(data, performance.now() - t0);
    } catch (err) {
      this.onError(err);
    } finally {
      this.inFlight = false;
      if (this.dirty) this.now();
      this.updateBusy();
    }
  }

  // Forget answers still on their way (the drawing was cleared).
  cancel() { this.seq++; }
}

// POST JSON and return the answer, or throw an Error carrying the server's `detail`.
export async function postJSON(url, body) {
  const res = await fetch(url, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({ detail: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(data.detail || `HTTP ${res.status}`);
  return data;
}

export async function getJSON(url) {
  const res = await fetch(url);
  const data = await res.json().catch(() => ({ detail: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(data.detail || `HTTP ${res.status}`);
  return data;
}
