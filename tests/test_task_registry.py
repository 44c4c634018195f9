"""A new task is one file plus one registration: config, profiles, sampling and the report learn it from there."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from guards.config.profiles import PROFILES
from guards.config.settings import ConfigError, load_settings
from guards.tasks import UnknownTask, get_task, task_names
from guards.tasks.registry import BUILTIN


def _plugin(tmp_path: Path, name: str) -> Path:
    """An installed distribution (dist-info on sys.path) whose entry point declares a task module."""
    (tmp_path / f"{name}_pkg.py").write_text(textwrap.dedent(f"""
        from guards.core.items import Item, Score
        from guards.tasks import TaskDefaults

        class Glossary(TaskDefaults):
            name = "{name}"
            axis = "utility"
            sizes = {{"smoke": 3, "pr": 7}}
            data_files = {{"": "glossary.jsonl"}}

            def load(self, data_dir, variant=None):
                return [Item(task=self.name, id=str(i), prompt=f"define term {{i}}", target="x") for i in range(9)]

            def score(self, item, response, **options):
                return Score(1.0 if response.strip() == item.target else 0.0)
        """))
    dist = tmp_path / f"{name}_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[persona_guard.tasks]\n{name} = {name}_pkg:Glossary\n")
    return tmp_path


def test_shipped_tasks_declare_everything_the_run_needs() -> None:
    for name in BUILTIN:
        task = get_task(name)
        assert task.name == name and task.axis in ("utility", "safety")
        assert set(task.sizes) >= {"smoke", "pr", "nightly", "paper"}
        assert "" in task.data_files
    shipped = {t: n for t, n in PROFILES["pr"].samples.items() if t in BUILTIN}  # custom tasks may be registered
    assert shipped == {"mmlu": 300, "gsm8k": 150, "mbpp": 100, "do_not_answer": 400, "strongreject": 150}
    assert {t: v for t, v in PROFILES["paper"].variants.items() if t in BUILTIN} == {"mmlu": "dev",
                                                                                        "strongreject": "346"}


def test_a_task_from_an_entry_point_joins_config_and_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    monkeypatch.syspath_prepend(str(_plugin(tmp_path, "glossary_ep")))
    assert "glossary_ep" in task_names()
    config = tmp_path / "thresholds.toml"
    config.write_text('[tasks]\nnames = ["mmlu", "glossary_ep"]\n[run]\nprofile = "pr"\n')
    settings = load_settings(config, environ={})
    assert settings.samples == {"mmlu": 300, "glossary_ep": 7}
    assert get_task("glossary_ep").axis == "utility"
    assert "glossary_ep" not in settings.judges  # a utility task gets no judge


def test_a_task_without_a_size_for_the_profile_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.syspath_prepend(str(_plugin(tmp_path, "glossary_nosize")))
    config = tmp_path / "thresholds.toml"
    config.write_text('[tasks]\nnames = ["glossary_nosize"]\n[run]\nprofile = "nightly"\n')
    with pytest.raises(ConfigError, match=r"tasks\.glossary_nosize\.samples"):
        load_settings(config, environ={})
    config.write_text('[tasks]\nnames = ["glossary_nosize"]\n[tasks.glossary_nosize]\nsamples = 5\n'
                      '[run]\nprofile = "nightly"\n')
    assert load_settings(config, environ={}).samples == {"glossary_nosize": 5}


def test_unknown_names_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(UnknownTask):
        get_task("no_such_task")
    config = tmp_path / "thresholds.toml"
    config.write_text("[tasks.mmlux]\nsamples = 3\n")
    with pytest.raises(ConfigError, match=r"tasks\.mmlux: unknown task"):
        load_settings(config, environ={})


def test_registration_by_decorator(monkeypatch: pytest.MonkeyPatch) -> None:
    from guards.core.items import Item
    from guards.tasks import TaskDefaults, register, registry

    monkeypatch.setattr(registry, "_REGISTERED", dict(registry._REGISTERED))  # leave no task behind

    @register
    class Echo(TaskDefaults):
        name = "echo_decorated"
        axis = "safety"
        sizes = {"smoke": 1}  # noqa: RUF012
        data_files = {"": "echo.csv"}  # noqa: RUF012

        def load(self, data_dir: Path | None, variant: str | None = None) -> list[Item]:
            return []

    assert isinstance(get_task("echo_decorated"), Echo) and "echo_decorated" in task_names()
    with pytest.raises(NotImplementedError):
        get_task("echo_decorated").score(Item(task="echo_decorated", id="1", prompt="p"), "r")
