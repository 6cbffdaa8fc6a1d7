// Small DOM helpers shared by the page's modules.
export const $ = (id) => document.getElementById(id);

// One status line under the canvas: informative text, or an error in red.
export function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}
