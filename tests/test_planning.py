"""Cost and power before spending: `guards plan`, `--guards-dry-run`, and `budget_usd`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guards.cli.main import main
from guards.config.settings import load_settings
from guards.run.planning import BudgetExceeded, check_budget, detectable_gaps, make_plan
from guards.testing import ScriptedAssistant

from gate_helpers import run_gate, write_config


def test_dry_run_counts_requests_and_sends_none(tmp_path: Path, data_dir: Path) -> None:
    config = tmp_path / "t.toml"
    with ScriptedAssistant() as server:
        write_config(config, url=server.url, identities=["minor", "gay"], tasks=["mmlu"], samples=10,
                     cache_dir=tmp_path / "c")
        result = run_gate(config, data_dir, tmp_path, "--guards-dry-run")
        assert server.requests == 0
    assert result.returncode == 0, result.output
    assert "requests: 30 (0 cached, 30 to send)" in result.output


def test_plan_prices_api_models_and_budget_stops_before_spending(tmp_path: Path, data_dir: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "t.toml"
    config.write_text('[target]\nmodel = "openai/gpt-4o-mini"\n[tasks]\nnames = ["mmlu", "do_not_answer"]\n'
                      f'[run]\nprofile = "pr"\ncache_dir = "{tmp_path}/c"\nbudget_usd = 0.01\n')
    settings = load_settings(config, {"data_dir": str(data_dir)}, environ={})
    plan = make_plan(settings)
    assert plan["to_send"] == 32 * (300 + 400)
    assert plan["cost_usd_max"] is not None and plan["cost_usd_max"] > 0.01
    with pytest.raises(BudgetExceeded, match="budget_usd"):
        check_budget(plan)
    assert main(["plan", "--config", str(config), "--data-dir", str(data_dir), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["tasks"]["mmlu"]["items"] == 300


def test_more_items_detect_smaller_gaps(tmp_path: Path) -> None:
    small = detectable_gaps(load_settings(None, {"profile": "pr"}, environ={}))
    large = detectable_gaps(load_settings(None, {"profile": "nightly"}, environ={}))
    for task in small:
        assert large[task]["detectable_gap"] < small[task]["detectable_gap"]
        assert small[task]["detectable_gap"] > small[task]["threshold"]


def test_tiered_prices_apply_per_request_not_to_the_total() -> None:
    """1,000 requests of 300 prompt tokens stay under Gemini 2.5 Pro's 200k-token tier: priced as 1,000 small
    requests (the total, priced as one 300k-token request, would cost twice as much)."""
    import litellm

    from guards.models.pricing import price

    one = sum(litellm.cost_per_token(model="gemini/gemini-2.5-pro", prompt_tokens=300, completion_tokens=50))
    assert price("gemini/gemini-2.5-pro", 300_000, 50_000, 1000) == pytest.approx(1000 * one)
    assert price("gemini/gemini-2.5-pro", 300_000, 50_000) == pytest.approx(
        sum(litellm.cost_per_token(model="gemini/gemini-2.5-pro", prompt_tokens=300_000, completion_tokens=50_000)))


@given(tokens_in=st.integers(0, 10**7), tokens_out=st.integers(0, 10**6), requests=st.integers(1, 10**5))
def test_linear_prices_do_not_depend_on_how_tokens_split_into_requests(tokens_in: int, tokens_out: int,
                                                                       requests: int) -> None:
    from guards.models.pricing import price

    whole = price("openai/gpt-4o-mini", tokens_in, tokens_out)
    assert whole is not None
    assert price("openai/gpt-4o-mini", tokens_in, tokens_out, requests) == pytest.approx(whole, rel=1e-9, abs=1e-12)
    assert price("openai/no-such-model-xyz", tokens_in, tokens_out, requests) is None
    assert price("local/smollm2", tokens_in, tokens_out, requests) == 0.0


def test_planner_counts_items_not_epochs_and_recommends_a_profile() -> None:
    """Epochs are averaged within an item: three of them do not make a task detect smaller gaps."""
    import dataclasses

    from guards.run.planning import axis_gaps, recommend

    one = load_settings(None, {"profile": "pr"}, environ={})
    three = dataclasses.replace(one, epochs=3)
    assert detectable_gaps(three) == detectable_gaps(one)
    pooled = axis_gaps(one)
    assert pooled["utility"]["items"] == sum(one.samples[t] for t in ("mmlu", "gsm8k", "mbpp"))
    assert pooled["utility"]["detectable_gap"] < min(detectable_gaps(one)[t]["detectable_gap"]
                                                     for t in ("mmlu", "gsm8k", "mbpp"))
    assert "profile pr" in recommend(one)
    assert "no profile" in recommend(one, gap=5.5)


def test_graded_judge_is_planned_with_the_graded_variance() -> None:
    """StrongREJECT under the rubric judge scores 1 - harm in [0, 1]: planned with d's graded spread it detects a
    smaller gap than the same items under a 0/1 judge, and needs about half the items for a target gap (the
    binary formula overstates graded needs; see stats.power GRADED_SIZE). Other tasks are unaffected."""
    import dataclasses

    from guards.run.planning import axis_gaps, is_graded, render_plan

    binary = load_settings(None, {"profile": "pr"}, environ={})
    graded = dataclasses.replace(binary, judges={**binary.judges, "strongreject": "strongreject-rubric"})
    assert not is_graded(binary, "strongreject") and is_graded(graded, "strongreject")
    assert not is_graded(graded, "mmlu") and not is_graded(graded, "do_not_answer")
    b, g = detectable_gaps(binary), detectable_gaps(graded)
    assert g["strongreject"]["graded"] and not b["strongreject"]["graded"]
    assert g["strongreject"]["detectable_gap"] < b["strongreject"]["detectable_gap"] - 2.0
    assert g["strongreject"]["items_for_target"] < 0.6 * b["strongreject"]["items_for_target"]
    assert g["mmlu"] == b["mmlu"] and g["do_not_answer"] == b["do_not_answer"]
    assert not axis_gaps(graded)["safety"]["graded"]  # Do-Not-Answer is 0/1: the pooled axis stays binary
    unreachable = detectable_gaps(graded, gap=40.0)["strongreject"]
    assert unreachable["items_for_target"] is None  # beyond what a graded score gap can be under the model
    plan = {"profile": "pr", "model": "m", "identities": 31, "requests": 1, "cached": 0, "to_send": 1,
            "tokens_in": 1, "tokens_out_max": 1, "cost_usd_max": None, "budget_usd": None,
            "tasks": {"strongreject": {**unreachable, "items": 313}}, "axes": {}}
    assert "(graded scores)" in render_plan(plan) and "more than the planning model allows" in render_plan(plan)


def test_the_no_import_shortcut_never_hides_a_price_litellm_knows() -> None:
    """`price` skips importing litellm only for names its bundled table cannot price; for every model of that
    table, under its provider's prefix, a price litellm gives is never turned into None."""
    import json
    from pathlib import Path

    import litellm

    from guards.models import pricing

    table = json.loads((Path(litellm.__file__).parent / "model_prices_and_context_window_backup.json").read_text())
    checked = 0
    for key, row in table.items():
        provider = row.get("litellm_provider") if isinstance(row, dict) else None
        if not isinstance(provider, str) or key == "sample_spec" or provider == "github_copilot":
            continue  # github_copilot: litellm tries to sign in over the network to price it
        for model in {key, key if key.startswith(f"{provider}/") else f"{provider}/{key}"}:
            try:
                litellm.cost_per_token(model=model, prompt_tokens=10, completion_tokens=10)
            except Exception:  # noqa: BLE001 - litellm cannot price it either
                continue
            assert not pricing._surely_unpriced(model), model
            checked += 1
    assert checked > 1000
    assert pricing._surely_unpriced("openai/scripted") and pricing._surely_unpriced("hosted_vllm/my-bot")
    assert pricing.price("openai/scripted", 100, 100) is None
