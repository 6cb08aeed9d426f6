// Apiary dashboard: a device's metric graphs, drawn with the vendored uPlot.
// The page gives the device and the range; dragging across a graph fetches that span again
// (at the finest resolution the backend keeps for it) and redraws every graph.
"use strict";

// Which series go on which graph: by the metric name before any ":instance".
const GRAPHS = [
  { title: "CPU", unit: "%", metrics: ["cpu.user", "cpu.system", "cpu.iowait"] },
  { title: "Memory and swap used", unit: "%", metrics: ["memory.used", "swap.used"] },
  { title: "Memory available", unit: "B", metrics: ["memory.available"] },
  { title: "Load average", unit: "", metrics: ["load.1", "load.5", "load.15"] },
  { title: "File systems used", unit: "%", metrics: ["fs.used"] },
  { title: "File systems free", unit: "B", metrics: ["fs.free"] },
  { title: "Network", unit: "B/s", metrics: ["net.rx", "net.tx"] },
  { title: "Temperature", unit: "°C", metrics: ["temp"] },
];

const COLOURS = ["#0b62c4", "#d0453a", "#2e8b57", "#d89b16", "#7b1e7a", "#3b9bb3", "#8a5a2b", "#5b6670"];

/// 1536 -> "1.5 KiB"; units other than bytes keep the number.
function formatValue(value, unit) {
  if (value == null) return "–";
  if (unit === "B" || unit === "B/s") {
    const steps = ["", "Ki", "Mi", "Gi", "Ti"];
    let v = Math.abs(value), i = 0;
    while (v >= 1024 && i < steps.length - 1) { v /= 1024; i++; }
    const text = (value < 0 ? "-" : "") + (i === 0 ? v.toFixed(0) : v.toFixed(1));
    return text + " " + steps[i] + unit;
  }
  const text = Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(2);
  return unit ? text + " " + unit : text;
}

function utc(seconds) {
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("graphs");
  if (!root || typeof uPlot === "undefined") return;
  const status = document.getElementById("graphs-status");
  const reset = document.getElementById("graphs-reset");
  const device = root.dataset.device;
  const initial = { from: Number(root.dataset.from), to: Number(root.dataset.to) };
  const initialAddress = window.location.pathname + window.location.search;
  let charts = [];

  function load(range) {
    status.textContent = "Loading…";
    const url = `/devices/${encodeURIComponent(device)}/metrics.json?from=${range.from}&to=${range.to}`;
    fetch(url, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`the backend answered ${r.status}`))))
      .then((set) => {
        draw(set);
        const zoomed = range.from !== initial.from || range.to !== initial.to;
        reset.hidden = !zoomed;
        // A zoomed view keeps its own address, to reload or to share.
        const address = zoomed ? `?from=${range.from}&to=${range.to}` : initialAddress;
        history.replaceState(null, "", address);
      })
      .catch((e) => { status.textContent = "Could not load the metrics: " + e.message; });
  }

  function draw(set) {
    for (const c of charts) c.destroy();
    charts = [];
    root.replaceChildren();
    let drawn = 0;
    for (const graph of GRAPHS) {
      const series = set.series.filter((s) => graph.metrics.includes(s.name.split(":")[0]));
      if (series.length === 0 || series.every((s) => s.values.every((v) => v == null))) continue;
      const box = document.createElement("div");
      box.className = "card graph";
      box.dataset.graph = graph.title;
      root.appendChild(box);
      charts.push(chart(box, graph, series, set));
      drawn++;
    }
    const points = set.times.length;
    status.textContent = drawn === 0
      ? `No samples from ${utc(set.from)} to ${utc(set.to)}.`
      : `${utc(set.from)} to ${utc(set.to)}: ${points} ${set.resolution === "hourly" ? "hourly means" : "samples"}`;
    root.dataset.points = String(points);
    root.dataset.resolution = set.resolution;
  }

  function chart(box, graph, series, set) {
    const width = Math.max(320, box.clientWidth - 24);
    const opts = {
      title: graph.title,
      width,
      height: 220,
      scales: { x: { time: true, range: [set.from, set.to] } },
      series: [{}].concat(series.map((s, i) => ({
        label: s.name,
        stroke: COLOURS[i % COLOURS.length],
        width: 1.5,
        spanGaps: false,
        value: (u, v) => formatValue(v, graph.unit),
      }))),
      axes: [{}, { size: 70, values: (u, ticks) => ticks.map((t) => formatValue(t, graph.unit)) }],
      cursor: { sync: { key: "apiary-graphs" }, drag: { x: true, y: false, setScale: false } },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 4) return;
          const from = Math.floor(u.posToVal(u.select.left, "x"));
          const to = Math.ceil(u.posToVal(u.select.left + u.select.width, "x"));
          u.setSelect({ left: 0, width: 0 }, false);
          if (to > from) load({ from, to });
        }],
      },
    };
    const data = [set.times].concat(series.map((s) => s.values));
    const u = new uPlot(opts, data, box);
    u.over.addEventListener("dblclick", () => load(initial));
    return u;
  }

  reset.addEventListener("click", () => load(initial));
  load(initial);
});
