"""The pytest plugin: --guards-* options, the profile in the header, per-identity tests, the summary."""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any

import pytest

from guards.config.profiles import PROFILES
from guards.config.settings import OVERRIDES, ConfigError, Settings, load_settings
from guards.run.planning import detectable_gaps

OPTIONS = {  # option -> (override key, help), generated from the one override table
    **{o.flag: (o.key, f"{o.help} ({o.env_var})" if o.env else o.help) for o in OVERRIDES},
    "from": ("from", "gate on a finished report (JSON) without asking any model"),
}


class GuardsInconclusive(UserWarning):
    """The run could not tell pass from fail for a test (too few items for the gap); see the report."""


class GuardsRunError(Exception):
    """Too many requests failed for a verdict (an error, never a pass)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("persona-guard")
    for name, (_, text) in OPTIONS.items():
        group.addoption(f"--guards-{name}", dest=f"guards_{name.replace('-', '_')}", default=None, help=text)
    group.addoption("--guards-dry-run", dest="guards_dry_run", action="store_true",
                    help="print the requests, tokens and cost the run would spend, then stop before any request")


def pytest_collection_finish(session: pytest.Session) -> None:
    """--guards-dry-run: show the plan and stop; a budget that the plan exceeds stops the run here too."""
    config = session.config
    if not _wants_gate(config) or config.getoption("guards_from"):
        return
    settings = _session(config).settings
    if not config.getoption("guards_dry_run") and settings.budget_usd is None:
        return
    from guards.run.planning import BudgetExceeded, check_budget, make_plan, render_plan

    plan = make_plan(settings)
    if config.getoption("guards_dry_run"):
        pytest.exit("persona-guard dry run (no request sent):\n" + render_plan(plan), returncode=0)
    try:
        check_budget(plan)
    except BudgetExceeded as exc:
        raise pytest.UsageError(f"persona-guard: {exc}") from None


class GuardsSession:
    """Loads settings once, evaluates the matrix once (lazily, when a guard test first needs it)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._settings: Settings | None = None
        self._run: Any = None

    def option(self, name: str) -> Any:
        return self.config.getoption(f"guards_{name.replace('-', '_')}")

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            overrides = {key: self.option(name) for name, (key, _) in OPTIONS.items() if key not in ("config", "from")}
            path = self.option("config")
            try:
                self._settings = load_settings(Path(path) if path else None, overrides)
            except ConfigError as exc:
                raise pytest.UsageError(f"persona-guard: {exc}") from None
        return self._settings

    @property
    def run(self) -> Any:
        if self._run is None:
            from guards.run.session import evaluate, from_report

            source = self.option("from")
            capture = self.config.pluginmanager.getplugin("capturemanager")
            with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                if source:
                    self._run = from_report(self.settings, Path(source))
                else:
                    self._run = evaluate(self.settings, show_progress=True)
            if self.settings.history_dir and not source:
                from guards.report.history import append_history

                append_history(Path(self.settings.history_dir), self._run.report, self._run.outcomes)
        return self._run


_KEY = pytest.StashKey[GuardsSession]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_KEY] = GuardsSession(config)
    config.addinivalue_line("markers", "guards: a persona-guard gate test")


def _session(config: pytest.Config) -> GuardsSession:
    return config.stash[_KEY]


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if not _wants_gate(config):
        return None
    s = _session(config).settings
    profile = PROFILES[s.profile]
    samples = ", ".join(f"{t}={n}" for t, n in s.samples.items())
    return [
        f"persona-guard: profile={s.profile} ({profile.note})",
        f"persona-guard: model={s.model} identities={len(s.identities)} samples: {samples}",
        f"persona-guard: thresholds safety={s.thresholds.safety_gap_max}pp utility={s.thresholds.utility_gap_max}pp "
        f"pb={s.thresholds.pb_max} alpha={s.thresholds.alpha} ({s.thresholds.correction})",
        "persona-guard: smallest gap detectable (80% power): " + ", ".join(
            f"{t} {g['detectable_gap']:.0f}pp" for t, g in detectable_gaps(s).items()),
    ]


def _wants_gate(config: pytest.Config) -> bool:
    """True when the run collects the gate (suites/), so plain project tests stay untouched."""
    args = [str(a) for a in config.args]
    return any("suites" in a for a in args) or bool(config.getoption("guards_from"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "guards_identity" in metafunc.fixturenames:
        identities = _session(metafunc.config).settings.identities
        metafunc.parametrize("guards_identity", [i.id for i in identities], ids=[i.id for i in identities])


class AxisCheck:
    """What a gate test asserts about one identity and axis."""

    def __init__(self, session: GuardsSession, identity: str, axis: str, entry: dict[str, Any]) -> None:
        self.session, self.identity, self.axis, self.entry = session, identity, axis, entry

    def check(self) -> None:
        e, s = self.entry, self.session.settings
        verdict = e["verdict"]
        message = describe(self.identity, self.axis, e)
        waiver = e.get("waiver")
        if verdict == "fail":
            if waiver and waiver["active"]:
                pytest.xfail(f"waived until {waiver['expires']}: {waiver['reason']} -- {message}")
            pytest.fail(message, pytrace=False)
        if verdict == "inconclusive":
            if s.thresholds.on_inconclusive == "fail":
                pytest.fail(f"inconclusive (on_inconclusive = fail): {message}", pytrace=False)
            if s.thresholds.on_inconclusive == "warn":
                warnings.warn(GuardsInconclusive(message), stacklevel=2)


def describe(identity: str, axis: str, e: dict[str, Any]) -> str:
    """The failure message: gap, interval, adjusted p, threshold, and the tasks that decided it."""
    parts = [f"{identity} {axis}: {e['verdict']}; gap {_f(e.get('delta'))} pp "
             f"({_pct(e.get('ci_level'))} CI {_f(e['ci'][0])} to {_f(e['ci'][1])}), p_adj={_f(e.get('p_adjusted'), 4)}"]
    for task, t in e.get("tasks", {}).items():
        parts.append(f"  {task}: {_f(t.get('score'))}% vs baseline {_f(t.get('baseline'))}%, gap {_f(t.get('delta'))} "
                     f"[{_f(t['ci'][0])}, {_f(t['ci'][1])}], threshold {t.get('threshold')} pp, "
                     f"p_adj={_f(t.get('p_adjusted'), 4)}, n={t.get('n')}, errors={t.get('errors')}, "
                     f"refusals={t.get('refusals')}, detectable gap ~{_f(t.get('mdd'))} pp -> {t['verdict']}")
    return "\n".join(parts)


def _f(x: Any, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _pct(level: Any) -> str:
    return "n/a" if level is None else f"{100 * level:.1f}%"


@pytest.fixture
def guards_settings(request: pytest.FixtureRequest) -> Settings:
    return _session(request.config).settings


@pytest.fixture
def guards_run(request: pytest.FixtureRequest) -> Any:
    """The evaluated run (once per session)."""
    return _session(request.config).run


@pytest.fixture
def guard(request: pytest.FixtureRequest, guards_identity: str) -> AxisCheck:
    """The verdict of this test's identity on its axis (test_safety -> safety). An `error` errors the test."""
    session = _session(request.config)
    axis = request.function.__name__.removeprefix("test_")
    entry = session.run.identity(guards_identity)
    if entry is None or axis not in entry["axes"]:
        pytest.skip(f"no {axis} task in this run")
    axis_entry = entry["axes"][axis]
    if axis_entry["verdict"] == "error":
        raise GuardsRunError(describe(guards_identity, axis, axis_entry))
    return AxisCheck(session, guards_identity, axis, axis_entry)


@pytest.fixture
def guards_pb(request: pytest.FixtureRequest) -> dict[str, Any]:
    pb = _session(request.config).run.report.get("pb")
    if pb is None:
        pytest.skip("no identities evaluated")
    if pb["verdict"] == "error":
        raise GuardsRunError("PB cannot be computed: too many requests failed (see the identity errors)")
    return dict(pb)


def check_pb(pb: dict[str, Any], settings: Settings) -> None:
    """Fail when the noise-corrected PB exceeds pb_max with evidence; warn when inconclusive."""
    msg = (f"PB corrected {_f(pb.get('corrected'), 2)} ({_pct(pb.get('ci_level'))} CI {_f(pb['ci'][0], 2)} to "
           f"{_f(pb['ci'][1], 2)}), paper's PB {_f(pb.get('paper'), 2)}, threshold {pb['threshold']}")
    if pb["verdict"] == "fail":
        waiver = pb.get("waiver")
        if waiver and waiver["active"]:
            pytest.xfail(f"waived until {waiver['expires']}: {waiver['reason']} -- {msg}")
        pytest.fail(msg, pytrace=False)
    if pb["verdict"] == "inconclusive" and settings.thresholds.on_inconclusive != "pass":
        if settings.thresholds.on_inconclusive == "fail":
            pytest.fail(f"inconclusive: {msg}", pytrace=False)
        warnings.warn(GuardsInconclusive(msg), stacklevel=2)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    session = _session(config)
    if session._run is None:
        return
    from guards.report.terminal import summary_table

    terminalreporter.write_sep("=", "persona-guard summary")
    for line in summary_table(session._run.report, session.settings):
        terminalreporter.write_line(line)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        try:
            from guards.report.markdown import markdown_summary

            with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as handle:
                handle.write(markdown_summary(session._run.report) + "\n")
        except ImportError:  # pragma: no cover - renderer optional
            pass
