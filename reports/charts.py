"""The report's pictures as small inline SVG: no library, no script, no network, every text escaped.

Why not a charting library: pygal (the well-kept pure-Python SVG one) points its tooltips at a CDN
script by default and inlines its stylesheet in every chart, and matplotlib's SVG backend writes
several kilobytes of paths per chart and takes tens of milliseconds each; a 20-column report with
five pictures per failing column must stay under 400 KB and render in well under a second. These
functions draw a few dozen numbers that the engine already counted (``Histogram``) as rectangles and
polylines, a few hundred bytes to a few kilobytes each, styled by the report's CSS (classes ``ref``,
``cur``, ``slo``…), with a ``<title>`` on every mark so a hover shows the exact value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

from mlmon.tasks.checks.outcome import Histogram
from mlmon.tasks.numbers import Unit, human

W, H = 360, 160  # histogram viewBox
PAD_L, PAD_R, PAD_T, PAD_B = 34, 6, 16, 44
MIN_MISSING = 0.005  # a missing-values bar is drawn from this share (of all rows) on either side
LABEL_CHARS = 12


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _short(text: str, n: int = LABEL_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _svg(width: int, height: int, body: list[str], label: str, cls: str) -> Markup:
    return Markup(
        f'<svg class="chart {cls}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [n / total if total else 0.0 for n in counts]


def histogram(h: Histogram, title: str) -> Markup:
    """Reference (grey) and window (coloured) shares side by side per bin; ``< min`` / ``> max`` and new
    categories are marked. Shares, not counts, so windows of any size compare with the reference."""
    rs, cs = _shares(h.reference), _shares(h.current)
    labels = list(h.labels)
    new = list(h.new)
    rm, cm = h.reference_missing or 0.0, h.current_missing or 0.0
    missing = max(rm, cm) >= MIN_MISSING
    if missing:  # a share of all rows, beside the shares of the non-missing values
        labels.append("missing")
        rs, cs = [*rs, rm], [*cs, cm]
        new = [*new, *([False] * (len(labels) - 1 - len(new))), False]
    n = len(labels)
    top = max([*rs, *cs, 1e-9])
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    slot = plot_w / max(n, 1)
    bar = max(slot * 0.42, 0.8)
    body = [
        f'<line class="axis" x1="{PAD_L}" y1="{PAD_T + plot_h}" x2="{W - PAD_R}" y2="{PAD_T + plot_h}"/>',
        f'<text class="tick" x="{PAD_L - 3}" y="{PAD_T + 8}" text-anchor="end">{escape(human(top, Unit.SHARE))}</text>',
        f'<text class="tick" x="{PAD_L - 3}" y="{PAD_T + plot_h}" text-anchor="end">0</text>',
    ]
    last = n - 2 if missing else n - 1
    for i, label in enumerate(labels):
        x0 = PAD_L + i * slot + (slot - 2 * bar) / 2
        outside = h.kind == "numerical" and i in (0, last)
        odd = bool(new[i]) if i < len(new) else False
        if outside or odd or (missing and i == n - 1):
            body.append(
                f'<rect class="out" x="{_f(PAD_L + i * slot)}" y="{PAD_T}" width="{_f(slot)}" height="{plot_h}"/>'
            )
        for j, (share, cls) in enumerate(((rs[i], "ref"), (cs[i], "cur"))):
            bh = plot_h * share / top
            whose = "reference" if cls == "ref" else "window"
            tip = f"{label}: {whose} {human(share, Unit.SHARE)}" + (
                " of all rows" if label == "missing" else ""
            )
            body.append(
                f'<rect class="{cls}" x="{_f(x0 + j * bar)}" y="{_f(PAD_T + plot_h - bh)}" width="{_f(bar)}" '
                f'height="{_f(max(bh, 0.0))}"><title>{escape(tip)}</title></rect>'
            )
    if h.kind == "categorical":
        for i, label in enumerate(labels):
            cx = PAD_L + (i + 0.5) * slot
            text = _short(label, max(int(slot / 5.5), 3))
            body.append(
                f'<text class="tick{" new" if i < len(new) and new[i] else ""}" x="{_f(cx)}" y="{PAD_T + plot_h + 12}" '
                f'text-anchor="middle"><title>{escape(label)}</title>{escape(text)}</text>'
            )
    else:
        end = W - PAD_R - (slot if missing else 0)
        if missing:
            body.append(
                f'<text class="tick" x="{_f(W - PAD_R - slot / 2)}" y="{PAD_T + plot_h + 34}" text-anchor="middle">missing</text>'
            )
        lo, hi = (h.edges[0], h.edges[-1]) if h.edges else (math.nan, math.nan)
        y = PAD_T + plot_h + 12
        body += [
            f'<text class="tick" x="{_f(PAD_L + slot / 2)}" y="{y}" text-anchor="middle">&lt;min</text>',
            f'<text class="tick" x="{_f(PAD_L + slot)}" y="{y + 11}" text-anchor="middle">{escape(human(lo))}</text>',
            f'<text class="tick" x="{_f(end - slot)}" y="{y + 11}" text-anchor="middle">{escape(human(hi))}</text>',
            f'<text class="tick" x="{_f(end - slot / 2)}" y="{y}" text-anchor="middle">&gt;max</text>',
        ]
    body.append(
        f'<g class="legend"><rect class="ref" x="{W - 150}" y="1" width="8" height="8"/>'
        f'<text x="{W - 139}" y="9">reference</text><rect class="cur" x="{W - 82}" y="1" width="8" height="8"/>'
        f'<text x="{W - 71}" y="9">this window</text></g>'
    )
    return _svg(W, H, body, title, "hist")


def percentiles(values: Sequence[tuple[str, float | None, float | None]], title: str) -> Markup:
    """Latency percentiles as horizontal bars with their SLO as a tick: ``(name, value_ms, slo_ms)``."""
    rows = [(n, v, s) for n, v, s in values if v is not None and math.isfinite(v)]
    width, row_h, left = 360, 22, 44
    height = max(len(rows), 1) * row_h + 8
    top = max([1e-9, *(v for _, v, _ in rows), *(s for _, _, s in rows if s is not None)]) * 1.1
    scale = (width - left - 70) / top
    body = []
    for i, (name, v, slo) in enumerate(rows):
        y = 4 + i * row_h
        over = slo is not None and v > slo
        tip = f"{name} {human(v, Unit.MS)}" + (f" (SLO {human(slo, Unit.MS)})" if slo is not None else "")
        body.append(f'<text class="tick" x="{left - 4}" y="{y + 13}" text-anchor="end">{escape(name)}</text>')
        body.append(
            f'<rect class="{"bad" if over else "cur"}" x="{left}" y="{y + 3}" width="{_f(max(v * scale, 1))}" height="12">'
            f"<title>{escape(tip)}</title></rect>"
        )
        body.append(
            f'<text class="val" x="{_f(left + v * scale + 4)}" y="{y + 13}">{escape(human(v, Unit.MS))}</text>'
        )
        if slo is not None:
            sx = left + slo * scale
            body.append(
                f'<line class="slo" x1="{_f(sx)}" y1="{y}" x2="{_f(sx)}" y2="{y + 18}"><title>{escape(f"SLO {human(slo, Unit.MS)}")}</title></line>'
            )
    return _svg(width, height, body, title, "pct")


def against_reference(
    values: Sequence[tuple[str, float | None, float | None, float | None]], title: str
) -> Markup:
    """Model-quality metrics: the reference value with its noise band (shaded) and this window's value
    (a dot), on a 0–1 scale per row: ``(name, value, reference, band)``; the band is ± around the reference."""
    rows = [r for r in values if r[1] is not None and math.isfinite(r[1])]
    width, row_h, left, right = 360, 22, 64, 40
    height = max(len(rows), 1) * row_h + 8
    body = []
    for i, (name, v, ref, band) in enumerate(rows):
        assert v is not None
        lo = min(v, ref if ref is not None else v, 0.0)
        hi = max(v, ref if ref is not None else v, 1.0)
        span = hi - lo or 1.0

        def x(t: float, lo: float = lo, span: float = span) -> float:
            return left + (width - left - right) * (t - lo) / span

        y = 4 + i * row_h
        body.append(f'<text class="tick" x="{left - 4}" y="{y + 13}" text-anchor="end">{escape(name)}</text>')
        body.append(f'<line class="axis" x1="{left}" y1="{y + 9}" x2="{width - right}" y2="{y + 9}"/>')
        if ref is not None and math.isfinite(ref):
            b = band if band is not None and math.isfinite(band) else 0.0
            body.append(
                f'<rect class="band" x="{_f(x(ref - b))}" y="{y + 2}" width="{_f(max(x(ref + b) - x(ref - b), 1))}" height="14">'
                f"<title>{escape(f'reference {human(ref)} ± {human(b)}')}</title></rect>"
            )
            body.append(f'<line class="refmark" x1="{_f(x(ref))}" y1="{y}" x2="{_f(x(ref))}" y2="{y + 18}"/>')
        body.append(
            f'<circle class="cur" cx="{_f(x(v))}" cy="{y + 9}" r="4.5"><title>{escape(f"{name} {human(v)}")}</title></circle>'
        )
        body.append(f'<text class="val" x="{width - right + 4}" y="{y + 13}">{escape(human(v))}</text>')
    return _svg(width, height, body, title, "vsref")


def sparkline(
    values: Sequence[float | None], labels: Sequence[str], title: str, unit: Unit = Unit.NUMBER
) -> Markup:
    """The last windows oldest → newest as a line, the last point (this window) marked; gaps stay gaps."""
    width, height, pad = 120, 28, 3
    finite = [v for v in values if v is not None and math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    span = (hi - lo) or (abs(hi) or 1.0)
    n = len(values)
    step = (width - 2 * pad) / max(n - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        y = height - pad - (height - 2 * pad) * ((v - lo) / span if hi != lo else 0.5)
        return pad + i * step, y

    body, seg = [], []
    for i, v in enumerate(values):
        if v is None or not math.isfinite(v):
            if len(seg) > 1:
                body.append(f'<polyline class="line" points="{" ".join(seg)}"/>')
            seg = []
            continue
        px, py = xy(i, v)
        seg.append(f"{_f(px)},{_f(py)}")
        tip = f"{labels[i] if i < len(labels) else ''}: {human(v, unit)}"
        cls = "now" if i == n - 1 else "pt"
        body.append(
            f'<circle class="{cls}" cx="{_f(px)}" cy="{_f(py)}" r="{2.8 if i == n - 1 else 1.4}"><title>{escape(tip)}</title></circle>'
        )
    if len(seg) > 1:
        body.insert(0, f'<polyline class="line" points="{" ".join(seg)}"/>')
    return _svg(width, height, body, title, "spark")


def estimated_band(
    values: Sequence[tuple[str, float, float, float, float | None, float | None]], title: str
) -> Markup:
    """Estimated performance: per metric ``(name, estimate, lower, upper, reference, realized)`` on a
    0–1 scale: the band shaded, the estimate a dot, the reference a tick, the realized value (once the
    labels are in) a diamond."""
    width, row_h, left, right = 360, 22, 64, 40
    height = max(len(values), 1) * row_h + 8
    inner = width - left - right
    body = []
    for i, (name, v, lo, hi, ref, real) in enumerate(values):
        y = 4 + i * row_h

        def x(t: float) -> float:
            return left + inner * min(max(t, 0.0), 1.0)

        body.append(f'<text class="tick" x="{left - 4}" y="{y + 13}" text-anchor="end">{escape(name)}</text>')
        body.append(f'<line class="axis" x1="{left}" y1="{y + 9}" x2="{width - right}" y2="{y + 9}"/>')
        body.append(
            f'<rect class="band" x="{_f(x(lo))}" y="{y + 2}" width="{_f(max(x(hi) - x(lo), 1))}" height="14">'
            f"<title>{escape(f'band {human(lo)} – {human(hi)}')}</title></rect>"
        )
        if ref is not None and math.isfinite(ref):
            body.append(
                f'<line class="refmark" x1="{_f(x(ref))}" y1="{y}" x2="{_f(x(ref))}" y2="{y + 18}">'
                f"<title>{escape(f'reference {human(ref)}')}</title></line>"
            )
        body.append(
            f'<circle class="cur" cx="{_f(x(v))}" cy="{y + 9}" r="4.5"><title>{escape(f"estimated {name} {human(v)}")}</title></circle>'
        )
        if real is not None and math.isfinite(real):
            rx, ry = x(real), y + 9
            body.append(
                f'<path class="bad" d="M{_f(rx)} {_f(ry - 5)} L{_f(rx + 5)} {_f(ry)} L{_f(rx)} {_f(ry + 5)} L{_f(rx - 5)} {_f(ry)} Z">'
                f"<title>{escape(f'realized {name} {human(real)}')}</title></path>"
            )
        body.append(f'<text class="val" x="{width - right + 4}" y="{y + 13}">{escape(human(v))}</text>')
    return _svg(width, height, body, title, "vsref")
