"""One self-contained HTML file: verdict, the picture (inline base64 PNG), the table, and per identity the
items where it diverged from the baseline. No external URL, no script: it opens offline, from an artifact.

Responses to harmful prompts (safety tasks) are redacted unless `redact_harmful=False`.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from guards.core.outcomes import BASELINE, Cell, Outcomes
from guards.models.cache import Cache, CacheError
from guards.report.fields import axis_rows, shown_verdict, task_axes
from guards.report.format import interval, num, plain, pvalue, signed
from guards.report.markdown import AXIS_HEADER, HEADLINE, record_line

REDACTED = "[redacted: response to a harmful prompt; set redact_harmful = false to include it]"
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1180px;
color:#1b1f23;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #d0d7de;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.fail,.error{color:#b31d28;font-weight:600}.pass{color:#22863a}.inconclusive{color:#9a6700}.waived{color:#6f42c1}
.banner{padding:10px 14px;border-radius:6px;margin:10px 0;font-weight:600}
.banner.fail,.banner.error{background:#ffebe9;border:1px solid #ff8182}
.banner.pass{background:#dafbe1;border:1px solid #4ac26b}
.banner.inconclusive{background:#fff8c5;border:1px solid #d4a72c}
details{margin:6px 0}summary{cursor:pointer}pre{white-space:pre-wrap;background:#f6f8fa;padding:6px;margin:2px 0;
max-height:220px;overflow:auto;font-size:12px}.muted{color:#57606a;font-size:12px}img{max-width:100%}
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """Cells are already-escaped HTML."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict(v: str) -> str:
    return f'<span class="{esc(v)}">{esc(v)}</span>'


def divergent_items(outcomes: Outcomes, identity: str, task: str, limit: int = 5) -> list[dict[str, Any]]:
    """Items where the identity's outcome differs from the baseline's, worst for the identity first."""
    index = outcomes.index()
    mine, base = outcomes.matrix(identity, task, index), outcomes.matrix(BASELINE, task, index)
    with np.errstate(invalid="ignore"):
        diff = np.nanmean(mine, axis=1) - np.nanmean(base, axis=1) if mine.size else np.array([])
    rows = [(float(d), i) for i, d in enumerate(diff) if np.isfinite(d) and abs(d) > 1e-9]
    out = []
    for d, row in sorted(rows)[:limit]:
        item = outcomes.items[task][row]
        cells = {who: index.get((who, task, item, 0)) for who in (BASELINE, identity)}
        out.append({"item": item, "diff": d, BASELINE: float(np.nanmean(base[row])),
                    "identity": float(np.nanmean(mine[row])),
                    "refused": {who: bool(c and c.refused) for who, c in cells.items()},
                    "keys": {who: (c.response_key if c else "") for who, c in cells.items()}})
    return out


def responses_from_cache(cache_file: Path, cells: Iterable[Cell]) -> dict[str, str]:
    """Response texts by `Cell.response_key`, read from the response cache by each cell's request key; a cached
    text that is not the one scored (its hash differs: the entry was refreshed since) is left out."""
    wanted = {c.request_key: c.response_key for c in cells if c.request_key and c.response_key}
    if not wanted or not cache_file.is_file():
        return {}
    try:
        cache = Cache(cache_file)
    except CacheError:
        return {}
    try:
        rows = cache.get_many("responses", wanted)
    finally:
        cache.close()
    found = {}
    for request_key, row in rows.items():
        text = row.get("text") if isinstance(row, dict) else None
        if isinstance(text, str) and hashlib.sha256(text.encode()).hexdigest()[:16] == wanted[request_key]:
            found[wanted[request_key]] = text
    return found


def item_prompts(report: Mapping[str, Any], data_dir: Path | None, wanted: Mapping[str, set[str]]
                 ) -> dict[tuple[str, str], str]:
    """(task, item id) -> prompt, for the wanted items of each task (needs the data folder)."""
    from guards.tasks import get_task

    out: dict[tuple[str, str], str] = {}
    tasks = report.get("record", {}).get("tasks", {})
    for task, ids in wanted.items():
        try:
            items = get_task(task).load(data_dir, (tasks.get(task) or {}).get("variant"))
        except Exception:  # noqa: BLE001 - prompts are a nicety; a missing data file must not break the report
            continue
        out.update({(task, it.id): it.prompt for it in items if it.id in ids})
    return out


def render_html(report: Mapping[str, Any], outcomes: Outcomes | None = None, *,
                responses: Mapping[str, str] | None = None, prompts: Mapping[tuple[str, str], str] | None = None,
                redact_harmful: bool = True, plot_png: bytes | None = None, examples: int = 5) -> str:
    """The whole page as a string. `plot_png`: the picture (default: drawn here when matplotlib is present)."""
    rec = report.get("record", {})
    verdict = str(report.get("verdict", "error"))
    if plot_png is None:
        try:
            from guards.report.plots import identity_plot

            plot_png = identity_plot(report, dpi=100).png
        except ImportError:
            plot_png = None
    parts = [f"<h1>persona-guard report: {esc(plain(rec.get('model')))}</h1>",
             f'<div class="banner {esc(verdict)}">{esc(HEADLINE.get(verdict, verdict))}</div>',
             f'<p class="muted">{esc(_strip_tags(record_line(report, plain)))}</p>', _pb_html(report.get("pb"))]
    if plot_png:
        parts.append(f'<img alt="identities in utility x safety" src="data:image/png;base64,'
                     f'{base64.b64encode(plot_png).decode()}">')
    rows = [[f"<code>{esc(i['id'])}</code>", esc(i.get("category")), esc(a), num(e.get("score"), 1, "%"),
             signed(e.get("delta")), esc(interval(e.get("ci"), e.get("ci_level"))), pvalue(e.get("p_adjusted")),
             _verdict(shown_verdict(e))] for i, a, e in axis_rows(report)]
    parts += ["<h2>Every identity and axis (failures first)</h2>",
              '<p class="muted">Gap = identity minus baseline in percentage points (negative: worse for the '
              "identity); the interval is simultaneous over the family.</p>", _table(AXIS_HEADER, rows)]
    axes = task_axes(report)
    parts += ["<h2>Baseline</h2>", _table(("task", "axis", "score", "refusal rate", "items"), (
        [esc(t), esc(axes.get(t)), num(b.get("score"), 1, "%"), num(b.get("refusal_rate"), 0, "%"),
         esc(b.get("items"))] for t, b in report.get("baseline", {}).items()))]
    parts.append("<h2>Per identity: tasks and items where it diverged from the baseline</h2>")
    if outcomes is None:
        parts.append('<p class="muted">No per-item outcomes beside this report.</p>')
    for ident in sorted(report.get("identities", []), key=lambda i: min(
            (r for r in (_rank(e) for e in i["axes"].values())), default=9)):
        parts.append(_identity_html(ident, outcomes, axes, responses or {}, prompts or {}, redact_harmful, examples))
    parts.append(f'<p class="muted">Responses to harmful prompts {"redacted" if redact_harmful else "INCLUDED"}. '
                 "Generated by persona-guard; this file needs no network.</p>")
    title = f"persona-guard: {verdict} ({plain(rec.get('model', ''))})"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f"<body>{''.join(parts)}</body></html>\n")


def _rank(entry: Mapping[str, Any]) -> int:
    from guards.report.fields import rank

    return rank(shown_verdict(entry))


def _strip_tags(text: str) -> str:
    return text.replace("<sub>", "").replace("</sub>", "")


def _pb_html(pb: Mapping[str, Any] | None) -> str:
    if not pb:
        return "<p>PB: not computed.</p>"
    return (f"<p><b>Personalization Bias</b> (noise-corrected) <b>{num(pb.get('corrected'), 2)}</b> "
            f"{esc(interval(pb.get('ci'), pb.get('ci_level'), 2).replace('+', ''))} vs pb_max "
            f"{esc(pb.get('threshold'))}: {_verdict(shown_verdict(pb))}; the paper's PB {num(pb.get('paper'), 2)} "
            f"(MMLU x Do-Not-Answer {num(pb.get('paper_pairing'), 2)}).</p>")


def _identity_html(ident: Mapping[str, Any], outcomes: Outcomes | None, axes: Mapping[str, str],
                   responses: Mapping[str, str], prompts: Mapping[tuple[str, str], str], redact: bool,
                   examples: int) -> str:
    verdicts = [shown_verdict(e) for e in ident["axes"].values()]
    worst = min(verdicts, key=lambda v: {"error": 0, "fail": 1, "waived": 2, "inconclusive": 3}.get(v, 4))
    task_rows = [[esc(t), esc(a), num(x.get("score"), 1, "%"), num(x.get("baseline"), 1, "%"), signed(x.get("delta")),
                  esc(interval(x.get("ci"))), pvalue(x.get("p_adjusted")), esc(x.get("n")), esc(x.get("refusals")),
                  esc(x.get("errors")), num(x.get("mdd"), 0, " pp"), _verdict(str(x.get("verdict")))]
                 for a, e in ident["axes"].items() for t, x in e.get("tasks", {}).items()]
    body = [_table(("task", "axis", "score", "baseline", "gap", "interval", "adjusted p", "n", "refusals", "errors",
                    "detectable gap", "verdict"), task_rows)]
    if outcomes is not None:
        for task in (t for t in outcomes.items if t in axes):
            rows = divergent_items(outcomes, ident["id"], task, examples)
            if rows:
                body.append(f"<h4>{esc(task)}: {len(rows)} item(s) where it diverged (worst first)</h4>")
                body.append(_items_table(task, rows, axes.get(task) == "safety" and redact, responses, prompts,
                                         ident["id"]))
    opened = " open" if worst in ("fail", "error") else ""
    return (f"<details{opened}><summary><b>{esc(ident['id'])}</b> ({esc(ident.get('category'))}, "
            f"&ldquo;{esc(plain(ident.get('text'), 200))}&rdquo;): {_verdict(worst)}</summary>"
            f"{''.join(body)}</details>")


def _items_table(task: str, rows: list[dict[str, Any]], redact: bool, responses: Mapping[str, str],
                 prompts: Mapping[tuple[str, str], str], identity: str) -> str:
    def response(row: dict[str, Any], who: str) -> str:
        outcome = num(100 * row[BASELINE if who == BASELINE else "identity"], 0, "%")
        outcome += " (refused)" if row["refused"][who] else ""
        if redact:
            return f"{outcome}<br><i>{esc(REDACTED)}</i>"
        text = responses.get(row["keys"][who])
        shown = f"<pre>{esc(text[:1500])}</pre>" if text else '<span class="muted">(text not available)</span>'
        return outcome + shown

    out = []
    for row in rows:
        prompt = prompts.get((task, row["item"]))
        item = f"<code>{esc(row['item'])}</code>" + (f"<pre>{esc(prompt[:800])}</pre>" if prompt else "")
        out.append([item, response(row, BASELINE), response(row, identity), signed(100 * row["diff"], 0)])
    return _table(("item", "baseline: outcome, response", f"{identity}: outcome, response", "difference"), out)


def write_html(report: Mapping[str, Any], path: Path, outcomes: Outcomes | None = None, **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, outcomes, **kwargs), encoding="utf-8")
    return path
