// The profile: a name the user chooses (or none), kept in this browser's local storage and sent with every
// request, so that predictions adapt to the drawings corrected under it (GET/DELETE /v1/profiles/{name}).
import { $, setStatus } from "./dom.js";
import { site } from "./where.js";

const KEY = "mlpaint.profile";
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

export class ProfileControl {
  // onChange(): the profile was chosen, cleared or forgotten (predictions change)
  constructor({ onChange }) {
    this.input = $("profile"); this.info = $("profile-info"); this.forgetButton = $("forget");
    this.onChange = onChange;
    this.name = null; this.count = null;
    let saved = null;
    try { saved = localStorage.getItem(KEY); } catch { /* storage off: no profile is remembered */ }
    if (saved && NAME.test(saved)) { this.name = saved; this.input.value = saved; }
    this.input.addEventListener("change", () => this.choose(this.input.value.trim()));
    this.input.addEventListener("keydown", (ev) => { if (ev.key === "Enter") this.input.blur(); });
    this.forgetButton.addEventListener("click", () => this.forget());
    this.refresh();
  }

  // A name typed by the user: kept when valid ("" = no profile).
  choose(text) {
    if (text && !NAME.test(text)) {
      this.input.classList.add("bad");
      setStatus("A profile name is 1-64 letters, digits, '_' or '-'", true);
      return;
    }
    this.input.classList.remove("bad");
    this.name = text || null;
    try { if (this.name) localStorage.setItem(KEY, this.name); else localStorage.removeItem(KEY); } catch { /* */ }
    setStatus(this.name ? `Profile ${this.name}: corrections teach the model your hand` : "No profile");
    this.refresh();
    this.onChange();
  }

  // count: the profile's stored corrections (0: none yet), or null for no profile
  show(count) {
    this.count = count;
    this.info.dataset.count = count === null ? "" : String(count);
    this.info.textContent = count === null ? "" : count === 0 ? "new" : `${count} drawing${count === 1 ? "" : "s"}`;
    this.forgetButton.hidden = !count;
  }

  async refresh() {
    if (!this.name || site.static) { this.show(null); return; }   // the static site has no server
    const name = this.name;
    try {
      const res = await fetch(`/v1/profiles/${encodeURIComponent(name)}`);
      if (name !== this.name) return;
      if (res.status === 404) { this.show(0); return; }
      const data = await res.json();
      if (!res.ok) throw new Error(data.detail || `HTTP ${res.status}`);
      this.show(data.count);
    } catch (err) { setStatus(`Cannot read the profile: ${err.message || err}`, true); }
  }

  async forget() {
    const name = this.name;
    if (!name || !window.confirm(`Forget profile ${name} and its ${this.count} drawings?`)) return;
    try {
      const res = await fetch(`/v1/profiles/${encodeURIComponent(name)}`, { method: "DELETE" });
      const data = await res.json().catch(() => ({}));
      if (!res.ok && res.status !== 404) throw new Error(data.detail || `HTTP ${res.status}`);
      this.show(0);
      setStatus(`Profile ${name} forgotten (${data.deleted ?? 0} drawings deleted)`);
      this.onChange();
    } catch (err) { setStatus(`Cannot forget the profile: ${err.message || err}`, true); }
  }
}
