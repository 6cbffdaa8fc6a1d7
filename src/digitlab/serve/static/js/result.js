// The answer panel: the digit, the ten probability bars with raw scores, what the model saw, the explanation.
import { $ } from "./dom.js";

export class ResultView {
  // onPick(digit): a bar was clicked (explain that digit)
  constructor({ onPick }) {
    this.last = null;
    this.bars = [];
    for (let d = 0; d < 10; d++) {
      const li = document.createElement("li");
      li.className = "bar"; li.dataset.digit = String(d); li.tabIndex = 0;
      li.title = `Explain digit ${d}`;
      li.innerHTML = `<span class="d">${d}</span><span class="track"><span class="fill"></span></span>` +
                     `<span class="p">–</span><span class="s"></span>`;
      li.addEventListener("click", () => onPick(d));
      li.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); onPick(d); }
      });
      $("bars").appendChild(li);
      this.bars.push(li);
    }
  }

  // data: a /v1/predict answer; explainPicked: whether the user chose the explained digit
  show(data, roundTripMs, explainPicked) {
    this.last = data;
    if (data.no_ink) { this.empty("Nothing drawn yet"); return; }
    const big = $("digit");
    big.textContent = data.not_a_digit ? "?" : String(data.digit); big.classList.remove("empty");
    big.classList.toggle("not-digit", !!data.not_a_digit);
    $("badge").textContent = big.textContent;
    const p = data.probabilities[data.digit];
    $("confidence").textContent = data.not_a_digit
      ? `That doesn't look like a digit (best guess: ${data.digit})`
      : `It's a ${data.digit} — ${(100 * p).toFixed(p > 0.999 ? 2 : 1)}% sure`;
    $("timing").textContent = data.where === "browser"
      ? `${data.model} · in this browser ${data.elapsed_ms.toFixed(1)} ms`
      : `${data.model} · server ${data.elapsed_ms.toFixed(1)} ms · round trip ${roundTripMs.toFixed(0)} ms`;
    this.bars.forEach((li, d) => {
      li.classList.toggle("win", d === data.digit);
      li.classList.toggle("explained", data.explained_digit === d);
      li.querySelector(".fill").style.width = `${(100 * data.probabilities[d]).toFixed(1)}%`;
      li.querySelector(".p").textContent = `${(100 * data.probabilities[d]).toFixed(1)}%`;
      li.querySelector(".s").textContent = data.scores ? formatScore(data.scores[d]) : "";
    });
    drawSeen(data.input);
    drawHeat(data.input, data.explanation, data.explained_digit, data.explanation_method, explainPicked);
    if (data.where === "browser") $("heat-caption").textContent = "Explanations are computed by the server";
  }

  empty(text) {
    this.last = null;
    $("digit").textContent = "?"; $("digit").classList.add("empty"); $("digit").classList.remove("not-digit");
    $("badge").textContent = "";
    $("confidence").textContent = text; $("timing").textContent = "";
    this.bars.forEach((li) => {
      li.classList.remove("win", "explained");
      li.querySelector(".fill").style.width = "0";
      li.querySelector(".p").textContent = "–"; li.querySelector(".s").textContent = "";
    });
    drawSeen(null); drawHeat(null, null, null, null, false);
  }
}

export function formatScore(s) {
  const a = Math.abs(s);
  return a >= 1e4 || (a < 1e-2 && a > 0) ? s.toExponential(1) : s.toFixed(2);
}

// The 784 pixels the model saw, on the 28x28 canvas #seen.
export function drawSeen(input) {
  const c = $("seen").getContext("2d"), img = c.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = input ? input[i] : 0;
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
  }
  c.putImageData(img, 0, 0);
}

// The explanation over the faint drawing: green pixels push towards the digit, red ones away.
export function drawHeat(input, expl, digit, method, picked) {
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
    : `Why <b>${digit}</b>${picked ? "" : " (the prediction)"}: <span class="pos">green</span> for, ` +
      `<span class="neg">red</span> against · ${String(method).replace(/_/g, " ")}`;
}
