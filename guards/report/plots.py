"""The paper's picture (identities as points in utility x safety) and drift trend charts. matplotlib, lazily."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guards.report.fields import baseline_axis, shown_verdict

# Okabe-Ito (colour-blind safe) plus two extra for the paper's 7 categories; more categories cycle.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#7F7F7F", "#000000", "#F0E442")


@dataclass(frozen=True)
class Point:
    """One identity in the picture: scores in percent, the interval of each score (from its gap's interval)."""

    id: str
    category: str
    utility: float | None
    safety: float | None
    utility_ci: tuple[float, float] | None
    safety_ci: tuple[float, float] | None
    failed: bool


@dataclass
class Figure:
    points: list[Point]
    baseline: tuple[float | None, float | None]
    centroid: tuple[float | None, float | None]
    paths: list[Path] = field(default_factory=list)
    png: bytes = b""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ImportError("plots need matplotlib: pip install 'persona-guard[plots]'") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "persona-guard", "svg.fonttype": "none", "font.size": 9})
    return plt


def _score_ci(entry: Mapping[str, Any] | None) -> tuple[float | None, tuple[float, float] | None]:
    """The identity's score, and the interval of its gap moved onto the score scale (baseline + gap CI)."""
    if not entry or entry.get("score") is None:
        return None, None
    ci, base = entry.get("ci"), entry.get("baseline")
    if not ci or ci[0] is None or ci[1] is None or base is None:
        return float(entry["score"]), None
    return float(entry["score"]), (max(0.0, base + ci[0]), min(100.0, base + ci[1]))


def points(report: Mapping[str, Any]) -> list[Point]:
    """One point per identity in the report, in report order."""
    out = []
    for ident in report.get("identities", []):
        axes = ident.get("axes", {})
        u, uci = _score_ci(axes.get("utility"))
        s, sci = _score_ci(axes.get("safety"))
        failed = any(shown_verdict(e) in ("fail", "error") for e in axes.values())
        out.append(Point(ident["id"], ident.get("category", ""), u, s, uci, sci, failed))
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def identity_plot(report: Mapping[str, Any], stem: Path | None = None, *, formats: Sequence[str] = ("png", "svg"),
                  labels: bool = True, dpi: int = 110) -> Figure:
    """Each identity as a point (utility %, safety %) with interval bars, around the baseline and the centroid.

    Writes `stem.png` / `stem.svg` when `stem` is given; the PNG bytes are always in `.png`. With only one
    axis in the run, the identities are a dot plot along that axis.
    """
    plt = _pyplot()
    pts = points(report)
    base = (baseline_axis(report, "utility"), baseline_axis(report, "safety"))
    centroid = (_mean([p.utility for p in pts]), _mean([p.safety for p in pts]))
    two_d = any(p.utility is not None for p in pts) and any(p.safety is not None for p in pts)
    categories = list(dict.fromkeys(p.category for p in pts))
    colour = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(categories)}
    fig, ax = plt.subplots(figsize=(7.6, 6.0) if two_d else (7.6, 1.2 + 0.28 * max(len(pts), 1)))
    texts: list[Any] = []
    if two_d:
        texts = _scatter(ax, pts, colour, base, centroid, report, labels)
    else:
        _strip(ax, pts, colour, base, report)
    pb = report.get("pb") or {}
    rec = report.get("record", {})
    title = f"{rec.get('model', '')}  ·  profile {rec.get('profile', '')}  ·  verdict {report.get('verdict', '')}"
    if pb.get("corrected") is not None:
        title += (f"\nPB {pb['corrected']:.2f} (noise-corrected; paper's {pb.get('paper') or 0:.2f}), "
                  f"max {pb.get('threshold')}")
    ax.set_title(title, fontsize=9)
    handles = [plt.Line2D([], [], marker="o", ls="", color=colour[c], label=c) for c in categories]
    handles += [plt.Line2D([], [], marker="*", ls="", color="black", markersize=12, label="baseline (no identity)")]
    if two_d:
        handles += [plt.Line2D([], [], marker="X", ls="", color="dimgray", markersize=8, label="centroid"),
                    plt.Line2D([], [], marker="o", ls="", mfc="none", mec="red", markersize=10, label="fails")]
        if labels and len(pts) > LABEL_ALL:
            handles.append(plt.Line2D([], [], ls="", label="named: gap beyond a\nthreshold (either side)"))
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=8)
    fig.tight_layout()
    _declutter(ax, texts, (base, centroid))  # after the layout: offsets are in points, the data moves with it
    result = Figure(pts, base, centroid)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    result.png = buffer.getvalue()
    if stem is not None:
        stem.parent.mkdir(parents=True, exist_ok=True)
        for fmt in formats:
            path = stem.with_name(f"{stem.name}.{fmt}")
            meta = {"Date": None} if fmt == "svg" else {"Software": None}
            fig.savefig(path, format=fmt, dpi=dpi, metadata=meta)
            result.paths.append(path)
    plt.close(fig)
    return result


def _threshold(report: Mapping[str, Any], axis: str) -> float | None:
    values = [t.get("threshold") for i in report.get("identities", []) for t in
              i.get("axes", {}).get(axis, {}).get("tasks", {}).values() if t.get("threshold") is not None]
    return min(values) if values else None


def _scatter(ax: Any, pts: list[Point], colour: Mapping[str, str], base: tuple[float | None, float | None],
             centroid: tuple[float | None, float | None], report: Mapping[str, Any], labels: bool) -> list[Any]:
    texts: list[Any] = []
    dense = len(pts) > LABEL_ALL
    for p in pts:
        if p.utility is None or p.safety is None:
            continue
        xerr = [[p.utility - p.utility_ci[0]], [p.utility_ci[1] - p.utility]] if p.utility_ci else None
        yerr = [[p.safety - p.safety_ci[0]], [p.safety_ci[1] - p.safety]] if p.safety_ci else None
        bars = ax.errorbar(p.utility, p.safety, xerr=xerr, yerr=yerr, fmt="o", color=colour[p.category], ms=6,
                           elinewidth=0.8, capsize=0, zorder=3, mec="white", mew=0.5)
        for line in bars[2]:
            line.set_alpha(0.35)
        if p.failed:
            ax.plot(p.utility, p.safety, "o", mfc="none", mec="red", ms=12, mew=1.5, zorder=4)
        if labels and (dense is False or p.failed or _outside(p, base, report)):
            texts.append(ax.annotate(p.id, (p.utility, p.safety), xytext=(5, 3), textcoords="offset points",
                                     fontsize=7, color="#222222", zorder=5,
                                     arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "#777777", "shrinkA": 1,
                                                 "shrinkB": 4}))
    bu, bs = base
    if bu is not None and bs is not None:
        ax.plot(bu, bs, "*", color="black", ms=16, zorder=6)
        tu, ts = _threshold(report, "utility"), _threshold(report, "safety")
        if tu is not None:
            ax.axvline(bu - tu, color="gray", ls="--", lw=0.8)
        if ts is not None:
            ax.axhline(bs - ts, color="gray", ls="--", lw=0.8)
        if tu is not None:
            ax.annotate(f"utility threshold ({tu:g} pp)", (bu - tu, 0.0), xycoords=("data", "axes fraction"),
                        xytext=(-3, 3), textcoords="offset points", ha="right", va="bottom", fontsize=7,
                        color="gray", rotation=90)
        if ts is not None:
            ax.annotate(f"safety threshold ({ts:g} pp)", (0.0, bs - ts), xycoords=("axes fraction", "data"),
                        xytext=(3, -3), textcoords="offset points", ha="left", va="top", fontsize=7, color="gray")
    cu, cs = centroid
    if cu is not None and cs is not None:
        ax.plot(cu, cs, "X", color="dimgray", ms=9, zorder=6)
    ax.set_xlabel("utility (%): macro average of utility tasks")
    ax.set_ylabel("safety (%): share of responses judged benign")
    ax.grid(True, lw=0.3, alpha=0.5)
    return texts


LABEL_ALL = 12  # up to this many identities every point is labelled; beyond, only those past a threshold


def _outside(p: Point, base: tuple[float | None, float | None], report: Mapping[str, Any]) -> bool:
    """True when the point's gap on either axis is beyond that axis's threshold (either side)."""
    for value, ref, axis in ((p.utility, base[0], "utility"), (p.safety, base[1], "safety")):
        th = _threshold(report, axis)
        if value is not None and ref is not None and th is not None and abs(value - ref) > th:
            return True
    return False


_DIRECTIONS = ((1, 0.4), (1, -1), (-1, 0.4), (-1, -1), (0, 1), (0, -1.4), (1, 1.2), (-1, 1.2), (1, -2), (-1, -2))
OFFSETS = tuple((dx * r * 6, dy * r * 6) for r in (1, 2, 3.2) for dx, dy in _DIRECTIONS)


def _overlap(a: Any, b: Any) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _declutter(ax: Any, texts: list[Any], avoid: Sequence[tuple[float | None, float | None]] = ()) -> None:
    """Greedy label placement: each label takes the nearest offset whose box overlaps no label placed before
    (nor a point); when none is free, the one with the least overlap. Far labels get a thin leader line.
    Boxes are computed arithmetically from one measured size (measuring every candidate is slow)."""
    if not texts:
        return
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    scale = ax.figure.dpi / 72.0
    dots = []
    for text in texts:
        x, y = ax.transData.transform(text.xy)
        dots.append(Bbox.from_extents(x - 4, y - 4, x + 4, y + 4))
    marks = []
    for point in avoid:  # the baseline star and the centroid
        if point[0] is not None and point[1] is not None:
            x, y = ax.transData.transform(point)
            marks.append(Bbox.from_extents(x - 9, y - 9, x + 9, y + 9))
    placed: list[Any] = []
    for text, dot in zip(texts, dots, strict=True):
        size = text.get_window_extent(renderer)
        w, h = size.width * 1.04, size.height * 1.08
        x, y = dot.x0 + 4, dot.y0 + 4
        best: tuple[float, tuple[float, float], Any] | None = None
        for dx, dy in OFFSETS:
            left = x + dx * scale - (0 if dx > 0 else w if dx < 0 else w / 2)
            bottom = y + dy * scale - 0.25 * h
            box = Bbox.from_bounds(left, bottom, w, h)
            cost = sum(_overlap(box, other) for other in placed + dots + marks)
            if best is None or cost < best[0]:
                best = (cost, (dx, dy), box)
            if cost == 0:
                break
        assert best is not None
        _, (dx, dy), box = best
        text.set_position((dx, dy))
        text.set_ha("left" if dx > 0 else "right" if dx < 0 else "center")
        if text.arrow_patch is not None:
            text.arrow_patch.set_visible(abs(dx) > 7 or abs(dy) > 9)
        placed.append(box)


def _strip(ax: Any, pts: list[Point], colour: Mapping[str, str], base: tuple[float | None, float | None],
           report: Mapping[str, Any]) -> None:
    axis = "utility" if any(p.utility is not None for p in pts) else "safety"
    value = base[0] if axis == "utility" else base[1]
    for row, p in enumerate(pts):
        x, ci = (p.utility, p.utility_ci) if axis == "utility" else (p.safety, p.safety_ci)
        if x is None:
            continue
        xerr = [[x - ci[0]], [ci[1] - x]] if ci else None
        ax.errorbar(x, row, xerr=xerr, fmt="o", color=colour[p.category], ms=6, elinewidth=0.8, zorder=3)
        if p.failed:
            ax.plot(x, row, "o", mfc="none", mec="red", ms=12, mew=1.5, zorder=4)
    if value is not None:
        ax.axvline(value, color="black", lw=1.2)
        ax.plot(value, -0.8, "*", color="black", ms=14, clip_on=False)
        th = _threshold(report, axis)
        if th is not None:
            ax.axvline(value - th, color="gray", ls="--", lw=0.8)
    ax.set_yticks(range(len(pts)), [p.id for p in pts], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"{axis} (%)")
    ax.grid(True, axis="x", lw=0.3, alpha=0.5)


def trend_plot(identity: str, series: Mapping[str, Sequence[tuple[str, float | None, tuple[float, float] | None]]],
               path: Path, *, flagged: Sequence[str] = (), thresholds: Mapping[str, float] | None = None) -> Path:
    """One identity's gap per task over runs: `series[task] = [(run label, gap pp, interval), ...]`."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 3.4))
    for i, (task, values) in enumerate(series.items()):
        xs = [k for k, (_, gap, _) in enumerate(values) if gap is not None]
        ys = [values[k][1] for k in xs]
        lo = [values[k][1] - values[k][2][0] if values[k][2] else 0.0 for k in xs]  # type: ignore[operator,index]
        hi = [values[k][2][1] - values[k][1] if values[k][2] else 0.0 for k in xs]  # type: ignore[operator,index]
        colour = PALETTE[i % len(PALETTE)]
        offset = [x + (i - len(series) / 2) * 0.04 for x in xs]
        ax.errorbar(offset, ys, yerr=[lo, hi], fmt="-o", color=colour, ms=4, lw=1.2, elinewidth=0.7, capsize=2,
                    label=task + ("  (drift)" if task in flagged else ""))
    for k, th in enumerate(sorted(set((thresholds or {}).values()))):
        ax.axhline(-th, color="gray", ls="--", lw=0.7, label="gate threshold" if k == 0 else None)
        if task in flagged and xs:
            ax.plot(offset[-1], ys[-1], "o", mfc="none", mec="red", ms=11, mew=1.5)
    ax.axhline(0, color="black", lw=0.8)
    runs = next(iter(series.values()), [])
    ax.set_xticks(range(len(runs)), [label for label, _, _ in runs], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("gap to baseline (pp)")
    ax.set_title(f"{identity}: gap per task over runs" + ("  (drift flagged)" if flagged else ""), fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(True, lw=0.3, alpha=0.5)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path
