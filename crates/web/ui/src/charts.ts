// Small charts of a task's last hour (memory, CPU): one line on a canvas,
// its newest value and its highest written beside it. The points come from
// the server's own samples, ten seconds each; a gap (nobody watched) is
// left a gap.

import { h, setText } from "./dom";

export interface Series {
  step: number;
  points: [number, number, number][];
}

export class Chart {
  readonly el: HTMLElement;
  private canvas: HTMLCanvasElement;
  private value: HTMLElement;
  private peak: HTMLElement;

  constructor(
    private title: string,
    private pick: (p: [number, number, number]) => number,
    private format: (v: number) => string,
    private cls: string,
  ) {
    this.canvas = h("canvas", { class: "chart-canvas", width: "300", height: "60", "aria-hidden": "true" });
    this.value = h("span", { class: "chart-value" });
    this.peak = h("span", { class: "chart-peak dim" });
    this.el = h("figure", { class: `chart ${cls}` }, h("figcaption", null, h("span", { class: "chart-title" }, title), this.value, this.peak), this.canvas);
  }

  draw(series: Series): void {
    const points = series.points;
    const last = points[points.length - 1];
    setText(this.value, last ? this.format(this.pick(last)) : "–");
    const max = points.reduce((m, p) => Math.max(m, this.pick(p)), 0);
    setText(this.peak, points.length ? `peak ${this.format(max)} · last hour` : "no samples yet");
    this.el.title = `${this.title}, one point per ${series.step} s over the last hour (samples are taken while the dashboard is watched)`;
    const c = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(120, Math.floor(c.clientWidth || 300));
    const height = Math.floor(c.clientHeight || 60);
    if (c.width !== width * ratio || c.height !== height * ratio) {
      c.width = width * ratio;
      c.height = height * ratio;
    }
    const g = c.getContext("2d");
    if (!g) return;
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const style = getComputedStyle(this.el);
    g.strokeStyle = style.getPropertyValue("--line").trim() || "#2a2f3a";
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(0, height - 0.5);
    g.lineTo(width, height - 0.5);
    g.stroke();
    if (points.length === 0) return;
    const end = last[0] + series.step;
    const start = end - 3600;
    const top = max > 0 ? max * 1.15 : 1;
    const x = (t: number) => ((t - start) / 3600) * width;
    const y = (v: number) => height - 2 - (v / top) * (height - 6);
    g.strokeStyle = style.getPropertyValue("color").trim() || "#5aa2ff";
    g.fillStyle = g.strokeStyle;
    g.lineWidth = 1.5;
    g.beginPath();
    let prev = -Infinity;
    for (const p of points) {
      const px = x(p[0]);
      const py = y(this.pick(p));
      // A gap of a minute or more (nobody watched) stays a gap; the sampler
      // reads a host with many tasks less often than every step.
      if (p[0] - prev > series.step * 6) g.moveTo(px, py);
      else g.lineTo(px, py);
      prev = p[0];
    }
    g.stroke();
    if (points.length === 1) g.fillRect(x(last[0]) - 1.5, y(this.pick(last)) - 1.5, 3, 3);
  }
}
