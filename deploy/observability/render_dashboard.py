#!/usr/bin/env python3
"""Render the provisioned Grafana dashboard to a PNG, from a real Prometheus.

Grafana itself is not needed: the dashboard JSON (the one Grafana is
provisioned with) is read as it is, every panel's every target expression is
sent verbatim to Prometheus' `/api/v1/query_range` over the given window, and
each panel is drawn at its gridPos (24-column grid, 30 px rows) in Grafana's
dark theme: title, time series with the panel's line width and fill opacity,
y axis in the panel's unit (`fieldConfig.defaults.unit`: reqps, ops, s,
short, ...), min/max from the field config, and a list legend below the plot
whose names come from each target's legendFormat with `{{label}}` replaced by
the series' labels (or the series' label set when there is no legendFormat,
as Grafana does), capped like Grafana's at 35 % of the panel (the rows
beyond are scrolled out of view: a scrollbar shows there are more). A panel
whose queries all return nothing says "No data".

    render_dashboard.py --prometheus http://127.0.0.1:19090 \
        --dashboard deploy/observability/grafana/dashboards/ecommerce.json \
        --start 1767225600 --end 1767225840 --step 5 --output docs/dashboard.png

--start/--end take Unix seconds or RFC 3339 (2026-01-01T00:00:00Z); without
them the window is the dashboard's own default ending now (`time.from`, e.g.
now-30m). The step defaults to the window divided by ~200 points, at least
1 s. Needs matplotlib only (the HTTP calls use the standard library).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
from matplotlib.patches import FancyBboxPatch, Rectangle  # noqa: E402

# Grafana's dark theme (v10/v11).
CANVAS = "#111217"
PANEL_BG = "#181b1f"
PANEL_BORDER = "#2a2d33"
TEXT = "#ccccdc"
TEXT_SECONDARY = "#9fa1aa"
GRID = "#2a2d33"
NO_DATA = "#8e8e99"
# Grafana's classic palette, in its order.
PALETTE = [
    "#73BF69", "#F2CC0C", "#8AB8FF", "#FF780A", "#F2495C", "#5794F2",
    "#B877D9", "#705DA0", "#37872D", "#FADE2A", "#447EBC", "#C15C17",
    "#890F02", "#0A437C", "#6D1F62", "#584477", "#B7DBAB", "#F4D598",
    "#70DBED", "#F9BA8F", "#F29191", "#82B5D8", "#E5A8E2", "#AEA2E0",
    "#629E51", "#E5AC0E", "#64B0C8", "#E0752D", "#BF1B00", "#0A50A1",
    "#962D82", "#614D93",
]

GRID_COLUMNS = 24
ROW_PX = 30  # Grafana's GRID_CELL_HEIGHT
GAP_PX = 8  # Grafana's GRID_CELL_VMARGIN
HEADER_PX = 52
LEGEND_MAX_FRACTION = 0.35


# --------------------------------------------------------------------------
# Prometheus


@dataclass
class Series:
    labels: dict
    times: list  # datetimes (UTC)
    values: list  # floats, NaN for gaps and NaN samples
    name: str = ""
    color: str = ""


@dataclass
class PanelData:
    series: list = field(default_factory=list)
    errors: list = field(default_factory=list)


def query_range(base: str, expr: str, start: float, end: float, step: float, timeout: float) -> list:
    params = urllib.parse.urlencode(
        {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    )
    url = base.rstrip("/") + "/api/v1/query_range"
    request = urllib.request.Request(
        url,
        data=params.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = json.load(answer)
    except urllib.error.HTTPError as error:
        try:
            body = json.load(error)
        except ValueError:
            raise RuntimeError(f"HTTP {error.code} from {url}") from error
    except urllib.error.URLError as error:
        raise RuntimeError(f"Prometheus at {base} did not answer: {error.reason}") from error
    if body.get("status") != "success":
        raise RuntimeError(f"{body.get('errorType', 'error')}: {body.get('error', body)}")
    data = body["data"]
    if data.get("resultType") != "matrix":
        raise RuntimeError(f"expected a matrix, got {data.get('resultType')}")
    return data["result"]


def to_series(result: dict, step: float) -> Series:
    """One matrix entry as a Series, with NaN inserted where samples are missing,
    so that a gap shows as a gap (Grafana does not connect nulls by default)."""
    times, values = [], []
    previous = None
    for stamp, text in result.get("values", []):
        stamp = float(stamp)
        if previous is not None and stamp - previous > 1.5 * step:
            times.append(dt.datetime.fromtimestamp(previous + step, dt.timezone.utc))
            values.append(math.nan)
        times.append(dt.datetime.fromtimestamp(stamp, dt.timezone.utc))
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        values.append(value if math.isfinite(value) else math.nan)
        previous = stamp
    return Series(labels=result.get("metric", {}), times=times, values=values)


LEGEND_TEMPLATE = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


def legend_name(legend_format: str | None, labels: dict, expr: str) -> str:
    """Grafana's naming: legendFormat with {{label}} substituted (an absent
    label becomes empty), else the label set `{a="x", b="y"}`, else the
    expression itself when the series has no labels."""
    if legend_format and legend_format != "__auto":
        return LEGEND_TEMPLATE.sub(lambda m: str(labels.get(m.group(1), "")), legend_format).strip()
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    if not shown:
        return labels.get("__name__", expr)
    inner = ", ".join(f'{k}="{v}"' for k, v in shown.items())
    return labels.get("__name__", "") + "{" + inner + "}"


def fetch_panel(panel: dict, base: str, start: float, end: float, step: float, timeout: float) -> PanelData:
    data = PanelData()
    for target in panel.get("targets", []):
        if target.get("hide"):
            continue
        expr = target.get("expr")
        if not expr:
            continue
        try:
            results = query_range(base, expr, start, end, step, timeout)
        except RuntimeError as error:
            data.errors.append(f"{target.get('refId', '?')}: {error}")
            continue
        for result in results:
            series = to_series(result, step)
            series.name = legend_name(target.get("legendFormat"), series.labels, expr)
            data.series.append(series)
    for index, series in enumerate(data.series):
        series.color = PALETTE[index % len(PALETTE)]
    return data


# --------------------------------------------------------------------------
# Units, as Grafana formats them


def _trim(number: float, decimals: int) -> str:
    text = f"{number:.{max(0, decimals)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _decimals_for(step: float) -> int:
    """Fewest decimals that write multiples of step exactly (0.25 -> 2, 5 -> 0)."""
    if step <= 0 or not math.isfinite(step):
        return 0
    for decimals in range(0, 7):
        scaled = step * 10**decimals
        if abs(scaled - round(scaled)) < 1e-6 * max(1.0, scaled):
            return decimals
    return 6


def _scaled(value: float, step: float, scales) -> str:
    """value in the largest scale it reaches (per value, as Grafana does), with
    as many decimals as the tick step needs in that scale."""
    size = abs(value)
    for scale, suffix in scales:
        if size >= scale:
            return _trim(value / scale, _decimals_for(step / scale)) + suffix
    scale, suffix = scales[-1]
    return _trim(value / scale, _decimals_for(step / scale)) + suffix


SHORT = ((1e12, " Tri"), (1e9, " Bil"), (1e6, " Mil"), (1e3, " K"), (1, ""))
SECONDS = ((86400, " day"), (3600, " hour"), (60, " min"), (1, " s"), (1e-3, " ms"), (1e-6, " µs"), (1e-9, " ns"))
SUFFIXES = {
    "reqps": " req/s",
    "ops": " ops/s",
    "rps": " rd/s",
    "wps": " wr/s",
    "iops": " io/s",
    "percent": "%",
    "bytes": " B",
}


def format_value(unit: str | None, value: float, step: float) -> str:
    """One axis value in Grafana's unit, step being the distance between ticks."""
    if not math.isfinite(value):
        return ""
    if value == 0:
        return "0" + ({"s": " s", "ms": " ms"}.get(unit or "") or SUFFIXES.get(unit or "", ""))
    if unit == "s":
        return _scaled(value, step, SECONDS)
    if unit == "ms":
        return _scaled(value / 1000, step / 1000, SECONDS)
    if unit == "percentunit":
        return _trim(value * 100, _decimals_for(step * 100)) + "%"
    if unit == "percent":
        return _trim(value, _decimals_for(step)) + "%"
    return _scaled(value, step, SHORT) + SUFFIXES.get(unit or "", "")


class UnitFormatter(mticker.Formatter):
    def __init__(self, unit: str | None, decimals: int | None):
        self.unit = unit
        self.decimals = decimals

    def __call__(self, value, position=None):
        locs = sorted(loc for loc in self.locs if math.isfinite(loc))
        step = min((b - a for a, b in zip(locs, locs[1:]) if b > a), default=abs(value) or 1)
        if self.decimals is not None:
            step = 10.0 ** -self.decimals
        return format_value(self.unit, value, step)


# --------------------------------------------------------------------------
# Drawing


@dataclass
class Layout:
    width_px: int
    dpi: int
    font: float

    @property
    def column_px(self) -> float:
        return (self.width_px - GAP_PX) / GRID_COLUMNS


def text_width_px(fig, renderer, text: str, size: float, weight: str = "normal") -> float:
    probe = fig.text(0, 0, text, fontsize=size, fontweight=weight)
    width = probe.get_window_extent(renderer=renderer).width
    probe.remove()
    return width


def legend_rows(fig, renderer, names: list, size: float, width_px: float, swatch_px: float, gap_px: float):
    """Flow the legend entries left to right into rows that fit width_px, as
    Grafana's list legend does. Returns rows of (name, x offset)."""
    rows, row, x = [], [], 0.0
    for name in names:
        entry = swatch_px + 6 + text_width_px(fig, renderer, name, size)
        if row and x + entry > width_px:
            rows.append(row)
            row, x = [], 0.0
        row.append((name, x))
        x += entry + gap_px
    if row:
        rows.append(row)
    return rows


def draw_header(fig, layout: Layout, height_px: float, title: str, start: float, end: float):
    W = layout.width_px
    y0 = (height_px - HEADER_PX) / height_px
    fig.add_artist(
        Rectangle((0, y0), 1, HEADER_PX / height_px, transform=fig.transFigure, color="#0b0c0e", zorder=0)
    )
    mid = (height_px - HEADER_PX / 2) / height_px
    fig.text(GAP_PX / W + 0.002, mid, "Dashboards  ›  ", color=TEXT_SECONDARY, fontsize=layout.font + 2,
             va="center", ha="left")
    offset = text_width_px(fig, fig.canvas.get_renderer(), "Dashboards  ›  ", layout.font + 2)
    fig.text(GAP_PX / W + 0.002 + offset / W, mid, title, color=TEXT, fontsize=layout.font + 2,
             va="center", ha="left", fontweight="bold")
    fmt = "%Y-%m-%d %H:%M:%S"
    span = (f"{dt.datetime.fromtimestamp(start, dt.timezone.utc).strftime(fmt)}  to  "
            f"{dt.datetime.fromtimestamp(end, dt.timezone.utc).strftime(fmt)} UTC")
    span_w = text_width_px(fig, fig.canvas.get_renderer(), span, layout.font)
    pad = 10
    box_w = span_w + 2 * pad
    box_h = 28
    x1 = W - GAP_PX
    fig.add_artist(
        FancyBboxPatch(((x1 - box_w) / W, (height_px - HEADER_PX / 2 - box_h / 2) / height_px),
                       box_w / W, box_h / height_px, boxstyle="round,pad=0,rounding_size=0.002",
                       transform=fig.transFigure, facecolor=PANEL_BG, edgecolor=PANEL_BORDER, lw=1)
    )
    fig.text((x1 - pad) / W, mid, span, color=TEXT, fontsize=layout.font, va="center", ha="right")


def draw_panel(fig, renderer, layout: Layout, height_px: float, panel: dict, data: PanelData,
               start: float, end: float):
    W, H = layout.width_px, height_px
    grid = panel.get("gridPos", {})
    col = layout.column_px
    # Panel box in pixels, origin top-left of the grid area.
    x = GAP_PX + grid.get("x", 0) * col
    w = grid.get("w", 12) * col - GAP_PX
    top = HEADER_PX + GAP_PX + grid.get("y", 0) * (ROW_PX + GAP_PX)
    h = grid.get("h", 8) * (ROW_PX + GAP_PX) - GAP_PX

    def fx(px):
        return px / W

    def fy(px_from_top):
        return 1 - px_from_top / H

    fig.add_artist(
        FancyBboxPatch((fx(x), fy(top + h)), w / W, h / H,
                       boxstyle="round,pad=0,rounding_size=0.003", transform=fig.transFigure,
                       facecolor=PANEL_BG, edgecolor=PANEL_BORDER, lw=1, zorder=0)
    )
    title_px = 32
    title = panel.get("title", "")
    fig.text(fx(x + 10), fy(top + title_px / 2), title, color=TEXT, fontsize=layout.font + 1,
             fontweight="bold", va="center", ha="left")
    if panel.get("description"):
        tw = text_width_px(fig, renderer, title, layout.font + 1, "bold")
        fig.text(fx(x + 10 + tw + 16), fy(top + title_px / 2), "i", color=TEXT_SECONDARY,
                 fontsize=layout.font - 3, fontweight="bold", va="center", ha="center",
                 bbox=dict(boxstyle="circle,pad=0.25", facecolor="none", edgecolor=TEXT_SECONDARY, lw=1))

    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    custom = defaults.get("custom", {})
    has_values = any(any(math.isfinite(v) for v in s.values) for s in data.series)

    if data.errors and not data.series:
        fig.text(fx(x + w / 2), fy(top + (h + title_px) / 2), "Query error", color="#F2495C",
                 fontsize=layout.font + 3, ha="center", va="center")
        for i, error in enumerate(data.errors[:3]):
            fig.text(fx(x + w / 2), fy(top + (h + title_px) / 2 + 22 * (i + 1)), error[:110],
                     color=TEXT_SECONDARY, fontsize=layout.font - 2, ha="center", va="center")
        return
    if not has_values:
        fig.text(fx(x + w / 2), fy(top + (h + title_px) / 2), "No data", color=NO_DATA,
                 fontsize=layout.font + 5, ha="center", va="center")
        return

    legend = panel.get("options", {}).get("legend", {})
    show_legend = legend.get("showLegend", True) and legend.get("displayMode", "list") != "hidden"
    legend_font = layout.font - 1
    line_px = legend_font * layout.dpi / 72 * 1.45
    swatch_px = 14
    rows = []
    if show_legend:
        rows = legend_rows(fig, renderer, [s.name for s in data.series], legend_font,
                           w - 24, swatch_px, 16)
    # Grafana caps a bottom legend at 35 % of the panel and scrolls the rest:
    # the rows that do not fit are not in the picture either (a scrollbar says so).
    visible_rows = min(len(rows), max(1, int(LEGEND_MAX_FRACTION * (h - title_px) // line_px)))
    hidden = sum(len(row) for row in rows[visible_rows:])
    legend_h = visible_rows * line_px + (8 if rows else 0)

    # Plot area: room on the left for the widest y tick label, below for the time ticks.
    tick_font = layout.font - 1
    left_px = 12 + text_width_px(fig, renderer, "888.8 req/s", tick_font)
    bottom_px = 26
    plot_x = x + left_px
    plot_w = w - left_px - 14
    plot_top = top + title_px + 4
    plot_h = h - title_px - 4 - bottom_px - legend_h - 6
    ax = fig.add_axes((fx(plot_x), fy(plot_top + plot_h), plot_w / W, plot_h / H))
    ax.set_facecolor(PANEL_BG)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.grid(True, color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(colors=TEXT_SECONDARY, labelsize=tick_font, length=0, pad=5)
    ax.tick_params(axis="x", pad=7)

    line_width = float(custom.get("lineWidth", 1))
    fill = float(custom.get("fillOpacity", 0)) / 100
    for s in data.series:
        ax.plot(s.times, s.values, color=s.color, linewidth=line_width, solid_joinstyle="round")
        if fill > 0:
            ax.fill_between(s.times, s.values, 0, color=s.color, alpha=fill, linewidth=0)

    start_dt = dt.datetime.fromtimestamp(start, dt.timezone.utc)
    end_dt = dt.datetime.fromtimestamp(end, dt.timezone.utc)
    ax.set_xlim(start_dt, end_dt)
    span = end - start
    wanted = span / max(2, int(plot_w / 110))
    every = next((n for n in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
                              10800, 21600, 43200, 86400) if n >= wanted), 86400)
    if every < 60:
        locator = mdates.SecondLocator(bysecond=range(0, 60, every), tz=dt.timezone.utc)
    elif every < 3600:
        locator = mdates.MinuteLocator(byminute=range(0, 60, every // 60), tz=dt.timezone.utc)
    else:
        locator = mdates.HourLocator(byhour=range(0, 24, min(24, every // 3600)), tz=dt.timezone.utc)
    ax.xaxis.set_major_locator(locator)
    # Grafana: seconds shown for ranges up to 5 minutes.
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S" if span <= 300 else "%H:%M",
                                                      tz=dt.timezone.utc))

    finite = [v for s in data.series for v in s.values if math.isfinite(v)]
    low = defaults.get("min")
    high = defaults.get("max")
    data_low, data_high = min(finite), max(finite)
    y_low = low if low is not None else min(0.0, data_low)
    y_high = high if high is not None else data_high
    if y_high <= y_low:
        y_high = y_low + 1
    ax.set_ylim(y_low, y_high * 1.05 if high is None else y_high)
    ax.yaxis.set_major_locator(mticker.MaxNLocator(nbins=max(3, int(plot_h / 32)),
                                                   steps=[1, 2, 2.5, 5, 10], min_n_ticks=2))
    formatter = UnitFormatter(defaults.get("unit"), defaults.get("decimals"))
    ax.yaxis.set_major_formatter(formatter)
    # Fit the left margin to the widest y label, as Grafana sizes its axis.
    bottom, top_limit = ax.get_ylim()
    ticks = [t for t in ax.yaxis.get_major_locator().tick_values(bottom, top_limit)
             if bottom - 1e-9 <= t <= top_limit + 1e-9]
    formatter.set_locs(ticks)
    widest = max((text_width_px(fig, renderer, formatter(t), tick_font) for t in ticks), default=0)
    new_left = 10 + widest + 8
    plot_x = x + new_left
    plot_w = w - new_left - 14
    ax.set_position((fx(plot_x), fy(plot_top + plot_h), plot_w / W, plot_h / H))

    # Legend: flowed rows under the plot, a colored bar then the name.
    legend_top = plot_top + plot_h + bottom_px + 4
    names_iter = iter(data.series)
    if hidden:
        track_h = visible_rows * line_px
        thumb_h = track_h * visible_rows / len(rows)
        fig.add_artist(Rectangle((fx(x + w - 9), fy(legend_top + thumb_h)), 4 / W, thumb_h / H,
                                 transform=fig.transFigure, color="#4b4e56", zorder=3))
    for r, row in enumerate(rows[:visible_rows]):
        cy = legend_top + (r + 0.5) * line_px
        for name, offset in row:
            s = next(names_iter)
            lx = x + 12 + offset
            fig.add_artist(Rectangle((fx(lx), fy(cy) - 1.5 / H), swatch_px / W, 3.5 / H,
                                     transform=fig.transFigure, color=s.color, zorder=3))
            fig.text(fx(lx + swatch_px + 6), fy(cy), name, color=TEXT, fontsize=legend_font,
                     va="center", ha="left")


def render(dashboard: dict, panels_data: list, start: float, end: float, output: str,
           width_px: int, dpi: int, font: float):
    layout = Layout(width_px=width_px, dpi=dpi, font=font)
    bottom_rows = max((p.get("gridPos", {}).get("y", 0) + p.get("gridPos", {}).get("h", 8)
                       for p, _ in panels_data), default=8)
    height_px = HEADER_PX + GAP_PX + bottom_rows * (ROW_PX + GAP_PX)
    plt.rcParams.update({"font.family": "DejaVu Sans", "svg.fonttype": "none"})
    fig = plt.figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, facecolor=CANVAS)
    renderer = fig.canvas.get_renderer()
    draw_header(fig, layout, height_px, dashboard.get("title", ""), start, end)
    for panel, data in panels_data:
        draw_panel(fig, renderer, layout, height_px, panel, data, start, end)
    fig.savefig(output, dpi=dpi, facecolor=CANVAS)
    plt.close(fig)


# --------------------------------------------------------------------------


def parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse_relative(text: str, now: float) -> float:
    match = re.fullmatch(r"now(?:-(\d+)([smhd]))?", text.strip())
    if not match:
        return parse_time(text)
    if not match.group(1):
        return now
    return now - int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def panels_of(dashboard: dict) -> list:
    """Every panel, those inside collapsed rows included; rows themselves are not drawn."""
    out = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:19090")
    parser.add_argument("--dashboard", required=True, help="the provisioned dashboard JSON")
    parser.add_argument("--output", required=True, help="PNG to write")
    parser.add_argument("--start", help="Unix seconds or RFC 3339 [the dashboard's time.from]")
    parser.add_argument("--end", help="Unix seconds or RFC 3339 [the dashboard's time.to]")
    parser.add_argument("--step", type=float, help="query resolution in seconds [window / 200, at least 1]")
    parser.add_argument("--width", type=int, default=1600, help="image width in pixels [1600]")
    parser.add_argument("--dpi", type=int, default=100)
    parser.add_argument("--font-size", type=float, default=12.0, help="base font size in points [12]")
    parser.add_argument("--timeout", type=float, default=30.0, help="per query, seconds [30]")
    parser.add_argument("--report", action="store_true",
                        help="print, per target, how many series came back and whether any had a value")
    args = parser.parse_args(argv)

    with open(args.dashboard, encoding="utf-8") as f:
        dashboard = json.load(f)
    now = dt.datetime.now(dt.timezone.utc).timestamp()
    window = dashboard.get("time", {})
    start = parse_time(args.start) if args.start else parse_relative(window.get("from", "now-30m"), now)
    end = parse_time(args.end) if args.end else parse_relative(window.get("to", "now"), now)
    if end <= start:
        parser.error("--end must be after --start")
    step = args.step or max(1.0, round((end - start) / 200))

    panels_data = []
    for panel in panels_of(dashboard):
        data = fetch_panel(panel, args.prometheus, start, end, step, args.timeout)
        panels_data.append((panel, data))
        if args.report:
            live = sum(1 for s in data.series if any(math.isfinite(v) and v != 0 for v in s.values))
            print(f"  {panel.get('title', '?')}: {len(data.series)} series, {live} with a non-zero value"
                  + (f", errors: {data.errors}" if data.errors else ""), file=sys.stderr)
        for error in data.errors:
            print(f"render_dashboard: panel {panel.get('title', '?')!r}: {error}", file=sys.stderr)

    render(dashboard, panels_data, start, end, args.output, args.width, args.dpi, args.font_size)
    print(f"render_dashboard: wrote {args.output} ({len(panels_data)} panels, "
          f"{dt.datetime.fromtimestamp(start, dt.timezone.utc):%H:%M:%S}–"
          f"{dt.datetime.fromtimestamp(end, dt.timezone.utc):%H:%M:%S} UTC, step {step:g} s)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
