"""`guards init`: scaffold the gate in a repository -- thresholds.toml (every key shown at its default), the gate's
test module, .gitignore entries for the response cache and reports, a workflow calling the reusable action --
and print what it wrote and the next steps. It never overwrites a file without --force."""

from __future__ import annotations

import argparse
import string
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from guards import __version__
from guards.config.settings import ConfigError
from guards.core import exitcodes

ACTION = f"persona-guard/persona-guard@v{__version__}"  # the action at the root of persona-guard's repository
GITIGNORE_LINES = (".guards/", "reports/")


@dataclass(frozen=True)
class Planned:
    """One file `guards init` writes: where, what, and whether it appends (.gitignore) or creates."""

    path: Path
    text: str
    append: bool = False


def template(name: str) -> str:
    return resources.files("guards.templates").joinpath(name).read_text(encoding="utf-8")


def render_config(model: str, system_prompt_file: str | None) -> str:
    line = (f'system_prompt_file = "{system_prompt_file}"' if system_prompt_file
            else '# e.g. system_prompt_file = "prompts/system.txt"   (default: none)')
    return string.Template(template("thresholds.toml")).substitute(model=model, system_prompt_line=line)


def render_workflow(system_prompt_file: str | None, action: str = ACTION) -> str:
    folder = Path(system_prompt_file).parent.as_posix() if system_prompt_file else "prompts"
    glob = f"{folder}/**" if folder not in ("", ".") else (system_prompt_file or "prompts/**")
    return string.Template(template("persona-guard.yml")).substitute(prompt_glob=glob, action=action,
                                                                    version=__version__)


def plan(root: Path, model: str, system_prompt_file: str | None, action: str = ACTION) -> list[Planned]:
    """What init writes under `root` (pure: no file is touched)."""
    gitignore = root / ".gitignore"
    present = gitignore.read_text().splitlines() if gitignore.exists() else []
    missing = [line for line in GITIGNORE_LINES if line not in present]
    items = [
        Planned(root / "thresholds.toml", render_config(model, system_prompt_file)),
        Planned(root / "suites" / "test_gate.py", template("test_gate.py")),
        Planned(root / ".github" / "workflows" / "persona-guard.yml", render_workflow(system_prompt_file, action)),
    ]
    if missing:
        head = "" if not present or present[-1] == "" else "\n"
        items.append(Planned(gitignore, head + "# persona-guard: the response cache holds answers to harmful "
                                              "prompts; reports are build artifacts\n" + "\n".join(missing) + "\n",
                             append=True))
    return items


def next_steps(model: str) -> str:
    """What to do after `guards init`: an in-process `local/` model needs the `local` extra and no key."""
    if model.startswith("local/"):
        install = (f"pip install 'persona-guard[local]=={__version__}' (the CPU build of torch first) "
                   "in your dev environment")
        ask = "pytest suites/ (the model runs in this process: no API key)"
        ci = ("the workflow installs the plain package (no in-process models): point [target] at an API or a\n"
              "     served model for CI; it gates pull requests")
    else:
        install = f"pip install persona-guard=={__version__} in your dev environment"
        ask = "export your model's API key (e.g. OPENAI_API_KEY), then: pytest suites/"
        ci = "add the key as a repository secret; the workflow gates pull requests"
    return f"""
next steps:
  1. {install},
     then: guards data download
  2. {ask}
     (exit 0 pass, 1 fail, 4 usage/config/data error, 6 error verdict)
  3. {ci} that touch the prompt or
     thresholds.toml and seeds the response cache from pushes to main"""


def cmd_init(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="guards init", description="scaffold persona-guard in this repository")
    parser.add_argument("--model", required=True, help="litellm model string of the assistant, e.g. openai/gpt-4o-mini")
    parser.add_argument("--system-prompt-file", help="your deployed system prompt, relative to the repository root")
    parser.add_argument("--dir", type=Path, default=Path("."), help="the repository root (default: here)")
    parser.add_argument("--action", default=ACTION, help=f"the action reference the workflow uses ({ACTION})")
    parser.add_argument("--force", action="store_true", help="overwrite files that exist")
    args = parser.parse_args(argv)
    root: Path = args.dir
    if args.system_prompt_file and not (root / args.system_prompt_file).is_file():
        print(f"guards init: note: {args.system_prompt_file} does not exist yet; create it before the first run")
    items = plan(root, args.model, args.system_prompt_file, args.action)
    clash = [i.path for i in items if not i.append and i.path.exists()]
    if clash and not args.force:
        raise ConfigError(f"{', '.join(map(str, clash))} exist(s): nothing written (use --force to overwrite)")
    for item in items:
        item.path.parent.mkdir(parents=True, exist_ok=True)
        if item.append:
            with item.path.open("a", encoding="utf-8") as handle:
                handle.write(item.text)
        else:
            item.path.write_text(item.text, encoding="utf-8")
        print(f"{'appended to' if item.append else 'wrote'} {item.path}")
    print(next_steps(args.model))
    return exitcodes.PASS
