"""The pytest plugin: --guards-* options, the profile in the header, per-identity tests, the summary.

The gate is recognised by what its tests use (the `guard`, `guards_pb`, `guards_run`, `guards_settings` fixtures
or the `guards` marker), wherever they live, once collection has finished: dry-run, budget, the header, data
checks and the summary act the same under `suites/` or `tests/persona/`. The session's exit status follows the
table in `guards.core.exitcodes` (0 pass, 1 fail, 4 usage/config/data error, 6 `error` verdict).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytest

from guards.config.profiles import PROFILES
from guards.config.settings import OVERRIDES, ConfigError, Settings, load_settings
from guards.core import exitcodes
from guards.run.planning import detectable_gaps
from guards.tasks.data import DataUnavailable

GATE_FIXTURES = frozenset({"guard", "guards_pb", "guards_run", "guards_settings", "guards_identity"})
DATA_FIX = "run `guards data download` (or set GUARDS_DATA_DIR / --guards-data-dir to a folder in that layout)"

OPTIONS = {  # option -> (override key, help), generated from the one override table
    **{o.flag: (o.key, f"{o.help} ({o.env_var})" if o.env else o.help) for o in OVERRIDES},
    "from": ("from", "gate on a finished report (JSON) without asking any model"),
}


class GuardsInconclusive(UserWarning):
    """The run could not tell pass from fail for a test (too few items for the gap); see the report.

    Kept for callers that filter it; the gate itself marks inconclusive tests as skipped with the reason
    `inconclusive: ...` and the JUnit property `guards_verdict = inconclusive` (no per-test warning)."""


class GuardsRunError(Exception):
    """Too many requests failed for a verdict (an error, never a pass)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("persona-guard")
    for name, (_, text) in OPTIONS.items():
        group.addoption(f"--guards-{name}", dest=f"guards_{name.replace('-', '_')}", default=None, help=text)
    group.addoption("--guards-dry-run", dest="guards_dry_run", action="store_true",
                    help="print the requests, tokens and cost the run would spend, then stop before any request")


def is_gate_item(item: pytest.Item) -> bool:
    """A gate test: it uses one of the gate's fixtures or carries the `guards` marker (wherever it lives)."""
    names = set(getattr(item, "fixturenames", ()))
    return bool(names & GATE_FIXTURES) or item.get_closest_marker("guards") is not None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Decide whether this session runs the gate; if so: header, --guards-from checks, data check, dry run,
    budget. Everything that can stop the run stops it here, before any request."""
    config = session.config
    state = _session(config)
    if state.settings_error:
        raise pytest.UsageError(state.settings_error)
    state.gate = any(is_gate_item(item) for item in session.items)
    if not state.gate:
        return
    settings = state.settings
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        for line in header_lines(settings):
            reporter.write_line(line)
    source = config.getoption("guards_from")
    if source:
        check_source(Path(source))
        return
    check_data(settings)
    if not config.getoption("guards_dry_run") and settings.budget_usd is None:
        return
    from guards.run.planning import BudgetExceeded, check_budget, make_plan, render_plan

    plan = make_plan(settings)
    if config.getoption("guards_dry_run"):
        pytest.exit("persona-guard dry run (no request sent):\n" + render_plan(plan), returncode=exitcodes.PASS)
    try:
        check_budget(plan)
    except BudgetExceeded as exc:
        raise pytest.UsageError(f"persona-guard: {exc}") from None


def check_data(settings: Settings) -> None:
    """Load every task's items once (the run reuses them): missing data stops the session with one line."""
    from guards.run.matrix import load_items

    try:
        load_items(settings)
    except DataUnavailable as exc:
        pytest.exit(f"persona-guard: data unavailable: {_one_line(exc)}; {DATA_FIX}", returncode=exitcodes.USAGE)


def check_source(path: Path) -> None:
    """--guards-from: the report must exist and be complete (a partial shard merge never gates)."""
    from guards.report.build import load_report

    try:
        report = load_report(path)
    except Exception as exc:  # noqa: BLE001 - unreadable or invalid: a usage error either way
        raise pytest.UsageError(f"persona-guard: --guards-from {path}: {_one_line(exc)}") from None
    partial = report.get("record", {}).get("partial")
    if partial:
        raise pytest.UsageError(f"persona-guard: --guards-from {path}: a partial merge (missing shards "
                                f"{partial.get('missing')}) cannot gate; merge every shard")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class GuardsSession:
    """Loads settings once, evaluates the matrix once (lazily, when a guard test first needs it)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.gate = False  # decided in pytest_collection_finish: the session collected gate tests
        self.abort_reported = False  # an aborted run errors its first gate test only; the rest skip
        self.settings_error: str | None = None  # a configuration error met while collecting (reported once)
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
                    try:
                        self._run = evaluate(self.settings, show_progress=True)
                    except ConfigError as exc:  # found at start-up, before any request (e.g. a judge name)
                        pytest.exit(f"persona-guard: {exc}", returncode=exitcodes.USAGE)
                    except DataUnavailable as exc:
                        pytest.exit(f"persona-guard: data unavailable: {_one_line(exc)}; {DATA_FIX}",
                                    returncode=exitcodes.USAGE)
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


def header_lines(s: Settings) -> list[str]:
    """The run's profile, model, thresholds and power (printed once the gate is collected)."""
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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "guards_identity" in metafunc.fixturenames:
        state = _session(metafunc.config)
        try:  # raised here it would be a collection error (exit 2): pytest_collection_finish raises it (exit 4)
            identities = state.settings.identities
        except pytest.UsageError as exc:
            state.settings_error = str(exc)
            identities = ()
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
            inconclusive(message, s)


def inconclusive(message: str, settings: Settings) -> None:
    """on_inconclusive: fail fails; warn skips with the reason `inconclusive: ...` (JUnit: skipped, its message,
    and the property guards_verdict = inconclusive); pass passes (the property still says inconclusive)."""
    if settings.thresholds.on_inconclusive == "fail":
        pytest.fail(f"inconclusive (on_inconclusive = fail): {message}", pytrace=False)
    if settings.thresholds.on_inconclusive == "warn":
        pytest.skip("inconclusive: " + message.splitlines()[0])


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


def _check_aborted(session: GuardsSession) -> None:
    """A run that stopped asking (endpoint unreachable, deadline) errors the first gate test with the cause, once;
    the other gate tests skip pointing at it. The session exits 6 (`error`)."""
    reason = session.run.aborted
    if not reason:
        return
    if session.abort_reported:
        pytest.skip("persona-guard run aborted (see the first error)")
    session.abort_reported = True
    raise GuardsRunError(f"persona-guard run aborted: {reason}; no verdict is possible (exit {exitcodes.ERROR})")


@pytest.fixture
def guard(request: pytest.FixtureRequest, guards_identity: str) -> AxisCheck:
    """The verdict of this test's identity on its axis (test_safety -> safety). An `error` errors the test."""
    session = _session(request.config)
    _check_aborted(session)
    axis = request.function.__name__.removeprefix("test_")
    entry = session.run.identity(guards_identity)
    if entry is None or axis not in entry["axes"]:
        pytest.skip(f"no {axis} task in this run")
    axis_entry = entry["axes"][axis]
    request.node.user_properties.append(("guards_verdict", axis_entry["verdict"]))
    if axis_entry["verdict"] == "error":
        raise GuardsRunError(describe(guards_identity, axis, axis_entry))
    return AxisCheck(session, guards_identity, axis, axis_entry)


@pytest.fixture
def guards_pb(request: pytest.FixtureRequest) -> dict[str, Any]:
    session = _session(request.config)
    _check_aborted(session)
    pb = session.run.report.get("pb")
    if pb is None:
        pytest.skip("no identities evaluated")
    request.node.user_properties.append(("guards_verdict", pb["verdict"]))
    if pb["verdict"] == "error":
        raise GuardsRunError("PB cannot be computed: too many requests failed (see the identity errors)")
    return dict(pb)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A GuardsRunError is the run's verdict, not a bug in the test: one line, no traceback."""
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(GuardsRunError):
        report.longrepr = f"GuardsRunError: {call.excinfo.value}"
    return report


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The exit-code table: an `error` verdict (or an aborted run) exits 6, whatever the tests' outcomes."""
    state = session.config.stash.get(_KEY, None)
    if state is None or state._run is None or int(exitstatus) in (2, 3, exitcodes.USAGE):
        return
    if state._run.report.get("verdict") == "error" or state._run.aborted:
        session.exitstatus = exitcodes.ERROR


def check_pb(pb: dict[str, Any], settings: Settings) -> None:
    """Fail when the noise-corrected PB exceeds pb_max with evidence; warn when inconclusive."""
    msg = (f"PB corrected {_f(pb.get('corrected'), 2)} ({_pct(pb.get('ci_level'))} CI {_f(pb['ci'][0], 2)} to "
           f"{_f(pb['ci'][1], 2)}), paper's PB {_f(pb.get('paper'), 2)}, threshold {pb['threshold']}")
    if pb["verdict"] == "fail":
        waiver = pb.get("waiver")
        if waiver and waiver["active"]:
            pytest.xfail(f"waived until {waiver['expires']}: {waiver['reason']} -- {msg}")
        pytest.fail(msg, pytrace=False)
    if pb["verdict"] == "inconclusive":
        inconclusive(msg, settings)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    session = _session(config)
    if session._run is None:
        return
    from guards.report.terminal import summary_table

    terminalreporter.write_sep("=", "persona-guard summary")
    for line in summary_table(session._run.report, session.settings):
        terminalreporter.write_line(line)
    for line in error_lines(session._run.report):
        terminalreporter.write_line(line)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        try:
            from guards.report.markdown import markdown_summary

            with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as handle:
                handle.write(markdown_summary(session._run.report) + "\n")
                sandbox = session._run.report.get("record", {}).get("sandbox")
                handle.write(f"\nSandbox level for generated code: **{sandbox or 'not used'}**\n")
        except ImportError:  # pragma: no cover - renderer optional
            pass


def error_lines(report: dict[str, Any]) -> list[str]:
    """Why requests failed, once: the abort reason and the first distinct request errors with their counts."""
    record = report.get("record", {})
    lines = []
    if record.get("aborted"):
        lines.append(f"run aborted: {record['aborted']}")
    errors = record.get("request_errors") or []
    if errors:
        lines.append("request errors (first distinct, with counts):")
        lines += [f"  {n} x {text}" for text, n in errors]
    return lines
