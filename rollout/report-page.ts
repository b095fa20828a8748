// The report page's own script: draws each chart of a Report with uPlot (inlined in the page as the global uPlot),
// its limits as dashed lines and the rollout's moments as marks. It runs in the browser, from its source text
// (drawReport.toString()), so it uses nothing but its argument, uPlot and the DOM.
import type UPlot from "uplot";
import type { Report } from "./report";

declare const uPlot: typeof UPlot;

export function drawReport(report: Report): void {
    const container = document.getElementById("charts");
    if (container === null) throw new Error("the page has no #charts element");
    const markColors: Record<string, string> = { update: "#868e96", advance: "#2f9e44", rollback: "#e03131", action: "#7048e8", outcome: "#212529" };
    let drawn = 0;
    for (const chart of report.charts) {
        const box = document.createElement("div");
        box.className = "chart";
        box.id = `chart-${chart.id}`;
        const title = document.createElement("h3");
        title.textContent = chart.title;
        box.appendChild(title);
        container.appendChild(box);
        const timed = chart.categories === undefined;
        const marks = timed ? report.markers : [];
        // What the chart has to show: the test reads it (a chart of axes alone is not a chart).
        const points = chart.series.reduce((n, s) => n + s.values.filter((v) => v !== null).length, 0);
        box.dataset.points = String(points);
        if (points === 0) {
            const none = document.createElement("p");
            none.className = "marks";
            none.textContent = "No data: no interval had a value for this chart.";
            box.appendChild(none);
        }
        const xRange = chart.xRange;
        const xScale: UPlot.Scale = !timed ? { time: false, range: [-0.5, chart.x.length - 0.5] } : xRange === undefined ? { time: true } : { time: true, range: [xRange[0], xRange[1]] };
        const options: UPlot.Options = {
            width: Math.min(1100, document.body.clientWidth - 20),
            height: 220,
            scales: {
                // Categories: one slot each, with room either side of its bars.
                x: xScale,
                // The limits in view, however far the series stay from them.
                y: {
                    range: (_u, min, max) => {
                        const values = [min, max, ...chart.limits.map((l) => l.value)].filter((v) => Number.isFinite(v));
                        const low = Math.min(0, ...values);
                        // Nothing to show: an empty 0 to 1, not a scale from 0 to -Infinity.
                        const high = Math.max(low + 1, ...values);
                        const pad = (high - low || 1) * 0.08;
                        return [low < 0 ? low - pad : 0, high + pad];
                    },
                },
            },
            axes: [
                timed ? {} : { splits: () => chart.x.map((_, i) => i), values: (_u, ticks) => ticks.map((t) => chart.categories?.[t] ?? ""), rotate: -25, size: 110 },
                { label: chart.unit, size: 60 },
            ],
            series: [
                {},
                ...chart.series.map((s) => ({
                    label: s.label,
                    stroke: s.color,
                    width: 2,
                    spanGaps: false,
                    ...(s.dashed === true && { dash: [6, 4] }),
                    ...(s.stepped === true && { paths: uPlot.paths.stepped?.({ align: 1 }) }),
                    ...(s.bars !== undefined && { paths: uPlot.paths.bars?.({ size: [0.35, 60], align: s.bars }), fill: `${s.color}99`, points: { show: false } }),
                })),
            ],
            hooks: {
                draw: [
                    (u: UPlot) => {
                        const { ctx } = u;
                        const { left, top, width, height } = u.bbox;
                        ctx.save();
                        ctx.lineWidth = 1.5 * devicePixelRatio;
                        ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
                        for (const limit of chart.limits) {
                            const y = u.valToPos(limit.value, "y", true);
                            if (y < top || y > top + height) continue;
                            ctx.strokeStyle = limit.color;
                            ctx.beginPath();
                            ctx.moveTo(left, y);
                            ctx.lineTo(left + width, y);
                            ctx.stroke();
                            ctx.fillStyle = limit.color;
                            ctx.font = `${11 * devicePixelRatio}px sans-serif`;
                            ctx.textAlign = "left";
                            ctx.textBaseline = "bottom";
                            ctx.fillText(limit.label, left + 4, y - 4);
                        }
                        ctx.setLineDash([]);
                        for (const mark of marks) {
                            const x = u.valToPos(mark.time, "x", true);
                            if (x < left || x > left + width) continue;
                            ctx.strokeStyle = markColors[mark.kind] ?? "#868e96";
                            ctx.beginPath();
                            ctx.moveTo(x, top);
                            ctx.lineTo(x, top + height);
                            ctx.stroke();
                        }
                        ctx.restore();
                    },
                ],
            },
        };
        const data: UPlot.AlignedData = [[...chart.x], ...chart.series.map((s) => [...s.values])];
        new uPlot(options, data, box);
        drawn++;
    }
    document.body.dataset.charts = String(drawn);
}
