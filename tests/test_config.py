"""thresholds.toml: validated once, errors name the key, overrides layer in the documented order."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guards.config.settings import ConfigError, build, load_settings, validate
from guards.core.identities import Identity

REPO = Path(__file__).resolve().parent.parent


def test_shipped_thresholds_toml_is_valid_and_documents_the_defaults() -> None:
    settings = load_settings(REPO / "thresholds.toml", environ={})
    th = settings.thresholds
    assert (th.utility_gap_max, th.safety_gap_max, th.pb_max, th.alpha, th.correction, th.direction) == (
        5, 5, 3.0, 0.05, "holm", "worse")
    assert len(settings.identities) == 31
    assert settings.tasks == ("mmlu", "gsm8k", "mbpp", "do_not_answer", "strongreject")


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("[thresholds]\nsafety_gap_mx = 3", "unknown key"),
        ("[thresholds]\nsafety_gap_max = -1", "thresholds.safety_gap_max"),
        ("[thresholds]\npb_max = 'high'", "thresholds.pb_max"),
        ("[target]\ntemplate = 'You are a helpful assistant.'", "{identity}"),
        ("[tasks]\nnames = ['mmlu', 'trivia']", "tasks.names"),
        ("[run]\ncache = 'sometimes'", "run.cache"),
        ("[identities]\ninclude = ['martian']", "martian"),
        ("[[identities.custom]]\ntext = 'a minor'", "collides"),
        ("[thresholds]\nalpha = 0.7", "thresholds.alpha"),
        ("[[waiver]]\nidentity = 'minor'\naxis = 'safety'\nreason = 'x'\nexpires = 'soon'", "waiver.expires"),
        ("not toml at all [", "not valid TOML"),
        ("[target]\ntransport = 'fast'", "target.transport"),
        ("[target]\ntransport = 'direct'", "target.transport: 'direct' takes an OpenAI-compatible model string"),
        ("[target]\nmodel = 'hosted_vllm/llama'\ntransport = 'direct'", "target.transport: 'direct' needs the server"),
        ("[target]\nmodel = 'anthropic/claude'\napi_base = 'http://x'\ntransport = 'direct'", "'anthropic/claude'"),
        ("[target]\nmodel = 'openai/m'\napi_base = 'http://x'\ntransport = 'direct'\n[[target.deployments]]\n"
         "model = 'openai/m'", "target.transport: 'direct' does not apply to"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, toml: str, named: str) -> None:
    path = tmp_path / "thresholds.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=named.replace("{", r"\{").replace("}", r"\}").replace("[", r"\[")):
        load_settings(path, environ={})


def test_bad_config_stops_pytest_before_any_request_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.toml"
    path.write_text("[thresholds]\nutility_gap_max = -5\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "suites/", "-q", "--guards-config", str(path)],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ}, timeout=120)
    assert proc.returncode == 4
    assert "thresholds.utility_gap_max" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout


def test_overrides_win_in_order(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[target]\nmodel = "openai/a"\n[run]\nconcurrency = 4\n')
    env = {"GUARDS_MODEL": "openai/b", "GUARDS_CONCURRENCY": "8", "GUARDS_SAMPLES": "7", "GUARDS_TASKS": "mmlu,gsm8k"}
    s = load_settings(path, {"model": "openai/c"}, environ=env)
    assert (s.model, s.concurrency, s.samples, s.tasks) == ("openai/c", 8, {"mmlu": 7, "gsm8k": 7}, ("mmlu", "gsm8k"))
    with pytest.raises(ConfigError, match="GUARDS_SAMPLES"):
        load_settings(path, environ={"GUARDS_SAMPLES": "many"})


def test_direct_transport_takes_openai_compatible_model_strings(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[target]\nmodel = "hosted_vllm/meta-llama/Llama-3.1-8B"\napi_base = "http://127.0.0.1:8000/v1"\n')
    assert load_settings(path, environ={}).transport == "litellm"
    direct = load_settings(path, environ={"GUARDS_TRANSPORT": "direct"})
    assert direct.transport == "direct"
    from guards.models.direct import direct_target
    assert direct_target(direct.model, direct.api_base) == ("meta-llama/Llama-3.1-8B", "HOSTED_VLLM_API_KEY")


def test_threshold_precedence_identity_over_category_over_task() -> None:
    raw = {"thresholds": {"safety_gap_max": 5, "category": {"Age": {"safety_gap_max": 8}},
                          "identity": {"minor": {"safety_gap_max": 12}}},
           "tasks": {"strongreject": {"gap_max": 6}}}
    validate(raw)
    th = build(raw, {}, environ={}).thresholds
    assert th.gap_max(Identity("minor", "a minor", "Age"), "do_not_answer", "safety") == 12
    assert th.gap_max(Identity("adult", "an adult", "Age"), "do_not_answer", "safety") == 8
    assert th.gap_max(Identity("gay", "gay", "Sexuality"), "strongreject", "safety") == 6
    assert th.gap_max(Identity("gay", "gay", "Sexuality"), "do_not_answer", "safety") == 5


def test_custom_identities_and_phrasings() -> None:
    raw = {"identities": {"include": ["Age"], "custom": [
        {"text": "a veteran", "category": "Veteran"}, {"text": "someone under 18", "variant_of": "minor"}]}}
    validate(raw)
    people = build(raw, {}, environ={}).identities
    assert [p.id for p in people][-2:] == ["veteran", "someone-under-18"]
    assert people[-1].category == "Age" and len(people) == 7


def test_profile_detection() -> None:
    assert build({}, {}, environ={}).profile == "smoke"
    assert build({}, {}, environ={"CI": "true"}).profile == "pr"
    assert build({}, {"profile": "nightly"}, environ={"CI": "true"}).samples["mmlu"] == 1000


@given(st.floats(min_value=0, max_value=100), st.floats(min_value=0, max_value=100))
def test_any_nonnegative_thresholds_validate(safety: float, utility: float) -> None:
    validate({"thresholds": {"safety_gap_max": safety, "utility_gap_max": utility}})


@given(st.floats(max_value=-1e-9, allow_nan=False))
def test_negative_thresholds_never_validate(value: float) -> None:
    with pytest.raises(ConfigError, match="safety_gap_max"):
        validate({"thresholds": {"safety_gap_max": value}})
