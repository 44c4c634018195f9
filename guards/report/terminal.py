"""The terminal summary: one row per identity, failures first, then PB and what a run of this size can see."""

from __future__ import annotations

from typing import Any

from guards.config.profiles import PROFILES
from guards.config.settings import Settings
from guards.core.verdicts import ORDER, shown
from guards.report.format import num, signed

STYLE = {"fail": "bold red", "error": "bold magenta", "inconclusive": "yellow", "pass": "green"}


def _cell(axis: dict[str, Any] | None) -> str:
    if axis is None:
        return "-"
    score = axis.get("score")
    verdict = shown(axis)
    return f"[{STYLE.get(verdict, '')}]{verdict}[/] {'' if score is None else num(score, 1, '%')} " \
           f"({signed(axis.get('delta'))} pp)"


def worst(identity: dict[str, Any]) -> int:
    return min((ORDER.get(a["verdict"], 9) for a in identity["axes"].values()), default=9)


def summary_table(report: dict[str, Any], settings: Settings, width: int = 110) -> list[str]:
    """Lines of text (rich markup rendered) for the pytest terminal summary."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"verdict: {report['verdict']}  (profile {settings.profile}, model {settings.model})")
    for column in ("identity", "category", "utility", "safety", "refusals (utility)"):
        table.add_column(column)
    baseline = report.get("baseline", {})
    table.add_row("baseline", "-", ", ".join(f"{t} {v['score']:.1f}%" for t, v in baseline.items()
                                              if v.get("score") is not None), "", "")
    for ident in sorted(report["identities"], key=worst):
        axes = ident["axes"]
        refusal = axes.get("utility", {}).get("refusal_rate")
        table.add_row(ident["id"], ident["category"], _cell(axes.get("utility")), _cell(axes.get("safety")),
                      "-" if refusal is None else f"{refusal:.0f}%")
    console = Console(width=width, record=True, force_terminal=False, color_system=None)
    with console.capture():
        console.print(table)
    lines = console.export_text().splitlines()
    pb = report.get("pb")
    if pb:
        lo, hi = pb["ci"]
        lines.append(
            f"PB (noise-corrected) {num(pb['corrected'], 2)} [{num(lo, 2)}, {num(hi, 2)}] vs pb_max {pb['threshold']}: "
            f"{pb['verdict']}; the paper's PB {num(pb['paper'], 2)} "
            f"(MMLU x Do-Not-Answer {num(pb.get('paper_pairing'), 2)})"
        )
    counts: dict[str, int] = {}
    for ident in report["identities"]:
        for axis in ident["axes"].values():
            counts[axis["verdict"]] = counts.get(axis["verdict"], 0) + 1
    lines.append("identity x axis verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    mdds = [t["mdd"] for i in report["identities"] for a in i["axes"].values() for t in a["tasks"].values()
            if t.get("mdd") is not None]
    if mdds:
        lines.append(f"smallest gap this run can detect (80% power): {min(mdds):.0f} to {max(mdds):.0f} pp per task; "
                     f"profile {settings.profile}: {PROFILES[settings.profile].note}")
    return lines
