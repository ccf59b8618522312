// A weekly chart drawn by uPlot on a canvas: uPlot styles its nodes through the CSSOM, which the strict CSP allows.
import { html } from 'htm/preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { fmtInt } from './common.js';

const COLORS = ['#0040a8', '#b35c00', '#1b7f3a', '#8a1c7c', '#555555'];
const weekFmt = new Intl.DateTimeFormat('fr-FR', { day: 'numeric', month: 'short' });

// weeks: ISO dates of each week's Monday; series: [{label, values, dash?}] drawn as lines.
export function WeeklyChart({ title, weeks, series, height = 260 }) {
  const box = useRef(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const xs = weeks.map((w) => Date.parse(`${w}T00:00:00Z`) / 1000);
    const width = Math.max(320, el.clientWidth || 640);
    const opts = {
      width, height,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(4, max * 1.1)] } },
      axes: [
        { values: (u, ticks) => ticks.map((t) => weekFmt.format(new Date(t * 1000))) },
        { values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? fmtInt(t) : '')) },
      ],
      series: [
        { label: 'Semaine', value: (u, v) => (v == null ? '' : `sem. du ${weekFmt.format(new Date(v * 1000))}`) },
        ...series.map((s, i) => ({
          label: s.label, stroke: COLORS[i % COLORS.length], width: 2, dash: s.dash,
          points: { show: weeks.length < 40 },
          value: (u, v) => fmtInt(v),
        })),
      ],
      legend: { live: true },
    };
    const data = [xs, ...series.map((s) => s.values)];
    const plot = new uPlot(opts, data, el);
    // Follows the page's width (desktop window resized, tablet turned).
    const ro = typeof ResizeObserver === 'undefined' ? null
      : new ResizeObserver(() => plot.setSize({ width: Math.max(320, el.clientWidth), height }));
    ro?.observe(el);
    return () => { ro?.disconnect(); plot.destroy(); };
  }, [JSON.stringify(weeks), JSON.stringify(series), height]);
  return html`<figure class="chart">
    <figcaption>${title}</figcaption>
    <div class="chart-box" ref=${box} role="img" aria-label=${title}></div>
  </figure>`;
}
