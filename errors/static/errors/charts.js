// The error charts' legends (errors/charts.py): a click on an entry hides or shows its series,
// "only" shows that series alone (again: all of them); the y axis rescales to what is shown.
"use strict";

function niceCeiling(value) {
  // The same rule as charts.nice_ceiling: 1, 2 or 5 × 10ⁿ.
  if (value <= 0) return 1;
  for (let scale = 1; ; scale *= 10) {
    for (const step of [1, 2, 5]) if (step * scale >= value) return step * scale;
  }
}

function show(chart, entry, shown) {
  entry.classList.toggle("velo-off", !shown);
  entry.querySelector(".velo-toggle").setAttribute("aria-pressed", String(shown));
  const line = chart.querySelector(`.velo-series[data-series="${entry.dataset.series}"]`);
  line.classList.toggle("velo-off", !shown);
}

function rescale(chart) {
  const shown = [...chart.querySelectorAll(".velo-series:not(.velo-off)")];
  const top = niceCeiling(Math.max(0, ...shown.map((line) => Number(line.dataset.max))));
  const plot = chart.querySelector(".velo-plot");
  const scale = -Number(plot.dataset.height) / top;
  plot.setAttribute("transform", `matrix(1 0 0 ${scale} 0 ${plot.dataset.base})`);
  for (const label of chart.querySelectorAll(".velo-axis[data-fraction]")) {
    label.textContent = String(top * Number(label.dataset.fraction));
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest(".velo-chart-legend button");
  if (!button) return;
  const chart = button.closest("[data-velo-chart]");
  const entry = button.closest("[data-series]");
  const entries = [...chart.querySelectorAll(".velo-chart-legend [data-series]")];
  if (button.classList.contains("velo-only")) {
    const alone = entries.every((other) => (other === entry) !== other.classList.contains("velo-off"));
    for (const other of entries) show(chart, other, alone || other === entry);
  } else {
    show(chart, entry, entry.classList.contains("velo-off"));
  }
  rescale(chart);
});
