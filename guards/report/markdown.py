"""Markdown people read: the GitHub job summary and the PR comment (updated in place by its marker)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from guards.report.fields import ICON, axis_rows, mdd_range, shown_verdict, task_axes, verdict_counts
from guards.report.format import interval, md_code, md_text, num, pvalue, signed

MARKER = "<!-- persona-guard -->"
HEADLINE = {
    "fail": "FAIL: at least one identity is treated worse than the baseline beyond its threshold",
    "error": "ERROR: too many requests failed for a verdict",
    "inconclusive": "INCONCLUSIVE: no failure found, but this run is too small to rule some out",
    "pass": "PASS: every identity is within its thresholds, with evidence",
}


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _axis_row(ident: Mapping[str, Any], axis: str, e: Mapping[str, Any]) -> list[str]:
    v = shown_verdict(e)
    return [md_code(ident['id'], 60), md_text(ident.get("category", ""), 60), axis, num(e.get("score"), 1, "%"),
            signed(e.get("delta")), interval(e.get("ci"), e.get("ci_level")), pvalue(e.get("p_adjusted")),
            f"{ICON.get(v, '')} {v}"]


AXIS_HEADER = ("identity", "category", "axis", "score", "gap (pp)", "interval of the gap", "adjusted p", "verdict")


def pb_line(pb: Mapping[str, Any] | None) -> str:
    if not pb:
        return "PB: not computed (no identity evaluated)"
    v = shown_verdict(pb)
    return (f"**Personalization Bias** (noise-corrected) **{num(pb.get('corrected'), 2)}** "
            f"{interval(pb.get('ci'), pb.get('ci_level'), 2).replace('+', '')} vs `pb_max` {pb.get('threshold')}: "
            f"{ICON.get(v, '')} {v}. The paper's PB {num(pb.get('paper'), 2)}"
            f" (MMLU x Do-Not-Answer pairing {num(pb.get('paper_pairing'), 2)}).")


def _detect_line(report: Mapping[str, Any]) -> str:
    rec = report.get("record", {})
    span = mdd_range(report)
    text = f"Profile `{rec.get('profile', '?')}`"
    try:
        from guards.config.profiles import PROFILES

        note = PROFILES[rec["profile"]].note
        text += f" ({note})"
    except (ImportError, KeyError):
        pass
    if span:
        text += (f". Smallest gap this run can detect (80% power, threshold included): "
                 f"{span[0]:.0f} to {span[1]:.0f} pp per task")
    return text + "."


def headline(report: Mapping[str, Any]) -> str:
    verdict = str(report.get("verdict", "error"))
    rec = report.get("record", {})
    counts = verdict_counts(report)
    tally = ", ".join(f"{counts[k]} {k}" for k in ("fail", "error", "waived", "inconclusive", "pass") if k in counts)
    return (f"## {ICON.get(verdict, '')} persona-guard: {HEADLINE.get(verdict, verdict)}\n\n"
            f"Model {md_code(rec.get('model', '?'))}, profile {md_code(rec.get('profile', '?'))}; "
            f"identity x axis tests: {tally or 'none'}.")


def markdown_summary(report: Mapping[str, Any], *, details: bool = True) -> str:
    """The job summary: verdict, failures on top, every identity x axis, PB, baseline, what the run can see."""
    lines = [headline(report), "", pb_line(report.get("pb")), ""]
    rows = axis_rows(report)
    bad = [r for r in rows if shown_verdict(r[2]) in ("fail", "error")]
    if bad:
        lines += ["### Failures", "", *_table(AXIS_HEADER, (_axis_row(*r) for r in bad)), ""]
        lines += [_task_details(r[0], r[1], r[2]) for r in bad] + [""]
    lines += ["### Every identity and axis", "",
              "Gap = identity minus baseline, percentage points; negative = worse for the identity. "
              "The interval is simultaneous over the family (its level in parentheses).", "",
              *_table(AXIS_HEADER, (_axis_row(*r) for r in rows)), ""]
    if details:
        lines += ["<details><summary>Per task</summary>", "",
                  *_table(("identity", "task", "score", "gap (pp)", "interval", "adjusted p", "n", "refusals",
                           "errors", "blocked", "detectable gap", "verdict"), _task_rows(rows)),
                  "", "</details>", ""]
    lines += ["### Baseline (no identity sentence)", "", *_baseline_table(report), "",
              "### What this run can detect", "", _detect_line(report), "", record_line(report)]
    return "\n".join(lines).rstrip() + "\n"


def _task_rows(rows: Iterable[tuple[Mapping[str, Any], str, Mapping[str, Any]]]) -> Iterable[list[str]]:
    for ident, _, axis in rows:
        for task, t in axis.get("tasks", {}).items():
            yield [f"`{ident['id']}`", task, num(t.get("score"), 1, "%"), signed(t.get("delta")),
                   interval(t.get("ci")), pvalue(t.get("p_adjusted")), str(t.get("n", "")),
                   str(t.get("refusals", "")), str(t.get("errors", "")), str(t.get("blocked", "")),
                   num(t.get("mdd"), 0, " pp"), f"{ICON.get(t.get('verdict', ''), '')} {t.get('verdict')}"]


def _task_details(ident: Mapping[str, Any], axis: str, e: Mapping[str, Any]) -> str:
    parts = []
    for task, t in e.get("tasks", {}).items():
        parts.append(f"{task} {num(t.get('score'))}% vs {num(t.get('baseline'))}% "
                     f"(gap {signed(t.get('delta'))}, threshold {t.get('threshold')} pp, {t.get('verdict')}"
                     + (f", needs about {t['needs']:,} items" if t.get("verdict") == "inconclusive" and t.get("needs")
                        else "") + (f", stopped: {t['stopped']}" if t.get("stopped") == "futility" else "") + ")")
    waiver = e.get("waiver")
    extra = f" Waiver: {md_text(waiver['reason'], 200)} (until {md_text(waiver['expires'], 20)})." if waiver else ""
    refusal = e.get("refusal_rate")
    refused = f" Refusal rate {refusal:.0f}%." if refusal else ""
    return f"- `{ident['id']}` {axis}: " + "; ".join(parts) + "." + refused + extra


def _baseline_table(report: Mapping[str, Any]) -> list[str]:
    axes = task_axes(report)
    rows = [[task, axes.get(task, ""), num(b.get("score"), 1, "%"), num(b.get("refusal_rate"), 0, "%"),
             str(b.get("items", "")), str(b.get("errors", ""))] for task, b in report.get("baseline", {}).items()]
    return _table(("task", "axis", "score", "refusal rate", "items", "errors"), rows)


def record_line(report: Mapping[str, Any], escape: Callable[[Any, int], str] = md_text) -> str:
    """The reproducibility line; server-reported model versions escaped with `escape` (Markdown by default)."""
    rec = report.get("record", {})
    prompt = rec.get("system_prompt_sha256")
    versions = ", ".join(escape(v, 60) for v in list(rec.get("model_versions", []))[:5]) or "not reported"
    return (f"<sub>persona-guard {rec.get('version', '?')} · {rec.get('time', '?')} · model versions: {versions} · "
            f"system prompt sha256 {prompt[:12] if prompt else 'none'} · config sha256 "
            f"{str(rec.get('config_sha256', ''))[:12]} · seed {rec.get('seed', '?')}</sub>")


def pr_comment(report: Mapping[str, Any], base: Mapping[str, Any] | None = None,
               changes: Mapping[str, Any] | None = None) -> str:
    """The PR comment: the summary, plus what changed against the base branch's report.

    `changes` is `guards.analysis.compare.compare_runs(...)` as a dict (paired evidence on per-item outcomes);
    without it, a base report still gives verdicts and gaps before and after (no evidence).
    """
    lines = [MARKER, markdown_summary(report, details=False).rstrip(), ""]
    if changes is not None:


        lines += ["### Compared with the base branch", "", changes_markdown(changes)]
    elif base is not None:
        lines += ["### Compared with the base branch", "", *_before_after(base, report)]
    return "\n".join(lines).rstrip() + "\n"


def _before_after(base: Mapping[str, Any], head: Mapping[str, Any]) -> list[str]:
    """Verdicts and gaps before and after, for the identity x axis pairs whose verdict changed."""
    def index(report: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
        return {(i["id"], a): e for i in report.get("identities", []) for a, e in i.get("axes", {}).items()}

    old, new = index(base), index(head)
    rows = [[f"`{k[0]}`", k[1], f"{shown_verdict(old[k])} → {shown_verdict(new[k])}",
             f"{signed(old[k].get('delta'))} → {signed(new[k].get('delta'))}"]
            for k in new if k in old and shown_verdict(old[k]) != shown_verdict(new[k])]
    bpb, hpb = base.get("pb") or {}, head.get("pb") or {}
    lines = [f"Verdict {base.get('verdict')} → {head.get('verdict')}; PB (corrected) "
             f"{num(bpb.get('corrected'), 2)} → {num(hpb.get('corrected'), 2)}. "
             "No per-item outcomes for the base: changes shown without paired evidence.", ""]
    return lines + (_table(("identity", "axis", "verdict", "gap (pp)"), rows) if rows else ["No verdict changed."])


def changes_markdown(summary: Mapping[str, Any], *, all_rows: bool = False) -> str:
    """Markdown: PB and verdict before -> after, then the identity x task gaps that moved (or all)."""
    pb = summary["pb"]
    b, a = pb["before"], pb["after"]
    lines = [
        f"Verdict {summary['verdict']['before']} → **{summary['verdict']['after']}**. "
        f"PB (noise-corrected) {num(b.get('corrected'), 2)} → **{num(a.get('corrected'), 2)}** "
        f"(paper's PB {num(b.get('paper'), 2)} → {num(a.get('paper'), 2)}).",
    ]
    worse, better = summary.get("worse", []), summary.get("better", [])
    lines.append(("Gap grew (worse), with evidence: " + ", ".join(f"`{w}`" for w in worse)) if worse
                 else "No identity's gap grew with evidence.")
    if better:
        lines.append("Gap shrank (better), with evidence: " + ", ".join(f"`{w}`" for w in better))
    rows = [c for c in summary["changes"] if all_rows or c["verdict"] in ("worse", "better")]
    if rows:
        lines += ["", "| identity | task | gap before | gap after | change (pp) | interval | adjusted p | margin | "
                      "n | verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
        order = {"worse": 0, "better": 1, "inconclusive": 2, "stable": 3}
        for c in sorted(rows, key=lambda c: (order.get(c["verdict"], 9), c["change"])):
            lines.append(f"| `{c['identity']}` | {c['task']} | {signed(c['before'])} | {signed(c['after'])} | "
                         f"{signed(c['change'])} | [{signed(c['ci'][0])}, {signed(c['ci'][1])}] | "
                         f"{pvalue(c['p_adjusted'])} | {num(c['margin'])} | {c['n']} | {c['verdict']} |")
    lines += ["", "<sub>Paired on the items both runs asked: change = (identity − baseline) after minus before; "
                  "two-sided score test with Holm over every identity × task; a change counts past its margin.</sub>"]
    return "\n".join(lines) + "\n"
