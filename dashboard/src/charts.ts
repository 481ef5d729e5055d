// Hand-written SVG charts: horizontal bars (with an optional threshold line) and line charts.
// Each chart has a role="img" with a text alternative and a visually hidden data table.

import { h, s } from "./dom.js";

export interface Bar {
  label: string;
  value: number;
}

const PALETTE = ["#1f5fad", "#b34700", "#2a7a2a", "#7a3fa0", "#a0262b", "#00677a"];

/** Horizontal bars; `max` fixes the scale, `threshold` draws a dashed line at that value. */
export function barChart(title: string, bars: Bar[], opts: { unit?: string; max?: number; threshold?: number } = {}): HTMLElement {
  const unit = opts.unit ?? "";
  const max = Math.max(opts.max ?? 0, opts.threshold ?? 0, ...bars.map((b) => b.value), 1);
  const row = 26;
  const labelW = 150;
  const width = 480;
  const barW = width - labelW - 70;
  const height = Math.max(bars.length, 1) * row + 10;
  const svg = s(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${title}: ${bars.map((b) => `${b.label} ${fmt(b.value)}${unit}`).join(", ") || "no data"}`, class: "chart" },
    bars.map((b, i) => {
      const y = i * row + 4;
      const w = Math.max(1, (b.value / max) * barW);
      return s(
        "g",
        {},
        s("text", { x: labelW - 6, y: y + 15, "text-anchor": "end", class: "label" }, truncate(b.label, 22)),
        s("rect", { x: labelW, y, width: w, height: row - 8, fill: PALETTE[0] ?? "#1f5fad", rx: 2 }),
        s("text", { x: labelW + w + 4, y: y + 15, class: "value" }, `${fmt(b.value)}${unit}`),
      );
    }),
    opts.threshold !== undefined
      ? s("line", { x1: labelW + (opts.threshold / max) * barW, x2: labelW + (opts.threshold / max) * barW, y1: 0, y2: height, stroke: "#a0262b", "stroke-dasharray": "4 3", "stroke-width": 2, class: "threshold" })
      : null,
  );
  return figure(title, svg, ["label", `value${unit ? ` (${unit.trim()})` : ""}`], bars.map((b) => [b.label, fmt(b.value)]));
}

export interface Line {
  name: string;
  points: { x: number; y: number }[];
}

/** Lines over a shared x axis (epoch ms); `xLabel` formats ticks. */
export function lineChart(title: string, lines: Line[], xLabel: (x: number) => string): HTMLElement {
  const width = 480;
  const height = 180;
  const pad = { l: 36, r: 10, t: 10, b: 24 };
  const xs = lines.flatMap((l) => l.points.map((p) => p.x));
  const ys = lines.flatMap((l) => l.points.map((p) => p.y));
  const x0 = Math.min(...xs, Date.now());
  const x1 = Math.max(...xs, x0 + 1);
  const y1 = Math.max(...ys, 1);
  const px = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const py = (y: number) => height - pad.b - (y / y1) * (height - pad.t - pad.b);
  const svg = s(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart", "aria-label": `${title}: ${lines.map((l) => `${l.name} latest ${fmt(l.points.at(-1)?.y ?? 0)}`).join(", ") || "no data"}` },
    s("line", { x1: pad.l, x2: width - pad.r, y1: height - pad.b, y2: height - pad.b, stroke: "currentColor" }),
    s("line", { x1: pad.l, x2: pad.l, y1: pad.t, y2: height - pad.b, stroke: "currentColor" }),
    s("text", { x: pad.l - 4, y: pad.t + 8, "text-anchor": "end", class: "label" }, fmt(y1)),
    s("text", { x: pad.l - 4, y: height - pad.b, "text-anchor": "end", class: "label" }, "0"),
    s("text", { x: pad.l, y: height - 6, class: "label" }, xs.length ? xLabel(x0) : ""),
    s("text", { x: width - pad.r, y: height - 6, "text-anchor": "end", class: "label" }, xs.length ? xLabel(x1) : ""),
    lines.map((l, i) =>
      l.points.length === 1
        ? s("circle", { cx: px(l.points[0]!.x), cy: py(l.points[0]!.y), r: 3, fill: PALETTE[i % PALETTE.length] ?? "#000" })
        : s("polyline", { fill: "none", "stroke-width": 2, stroke: PALETTE[i % PALETTE.length] ?? "#000", points: l.points.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(" ") }),
    ),
  );
  const legend = h("ul", { class: "legend" }, lines.map((l, i) => h("li", { "data-color": String(i % PALETTE.length) }, l.name)));
  const rows = lines.flatMap((l) => l.points.map((p) => [l.name, xLabel(p.x), fmt(p.y)]));
  const fig = figure(title, svg, ["series", "time", "value"], rows);
  fig.insertBefore(legend, fig.querySelector("details"));
  return fig;
}

function figure(title: string, svg: SVGElement, head: string[], rows: string[][]): HTMLElement {
  return h(
    "figure",
    { class: "chart-figure" },
    h("figcaption", {}, title),
    svg,
    h(
      "details",
      {},
      h("summary", {}, "Data"),
      h("table", {}, h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))), h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c)))))),
    ),
  );
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function truncate(text: string, n: number): string {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}
