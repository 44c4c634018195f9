"""The package layout: one concept per subpackage, each importing only downward (imports inside functions too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "guards"

# bottom first: a module may import its own subpackage and any layer below it, never one above (templates: files
# `guards init` writes into a user's repository, user-side code that may import the whole package)
LAYERS = ["core", "sandbox", "stats", "tasks", "config", "models", "judges", "analysis", "report", "run", "mitigate",
          "testing", "cli", "pytest_plugin", "templates"]
FACADE = "__init__"  # guards/__init__.py: the public API, resolved lazily on attribute access


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else FACADE


def imports(path: Path) -> set[str]:
    """Every guards module this file imports, at module level or inside functions (TYPE_CHECKING included)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join([*package[:len(package) - node.level + 1], node.module or ""]) if node.level \
                else node.module or ""
            found |= {base.rstrip(".")} | {f"{base}.{a.name}" for a in node.names}
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value)
    return {resolved for m in found if m.startswith("guards.") and (resolved := _module(m)) is not None}


def _module(name: str) -> str | None:
    """The longest prefix of `name` that is a module or package of guards (drops imported attributes)."""
    parts = name.split(".")
    while len(parts) > 1:
        path = PACKAGE.parent.joinpath(*parts)
        if path.with_suffix(".py").exists() or (path / "__init__.py").exists():
            return ".".join(parts)
        parts.pop()
    return None


def upward(path: Path) -> list[str]:
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    own = layer_of(module)
    if own == FACADE or own not in LAYERS:
        return []
    bad = []
    for target in sorted(imports(path)):
        layer = layer_of(target)
        if layer in LAYERS and LAYERS.index(layer) > LAYERS.index(own):
            bad.append(f"{module} ({own}) imports {target} ({layer}), a layer above it")
    return bad


def test_every_subpackage_is_in_a_layer() -> None:
    found = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    found |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != FACADE}
    assert found <= set(LAYERS), f"place these in LAYERS: {sorted(found - set(LAYERS))}"


def test_no_import_runs_up_a_layer() -> None:
    bad = [line for path in sorted(PACKAGE.rglob("*.py")) for line in upward(path)]
    assert not bad, "\n".join(bad)


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    fake = PACKAGE / "core" / "_layout_probe.py"
    fake.write_text("def f():\n    from guards.report.build import build_report\n")
    try:
        assert upward(fake) == ["guards.core._layout_probe (core) imports guards.report.build (report), "
                                "a layer above it"]
    finally:
        fake.unlink()


@pytest.mark.parametrize("layer", [name for name in LAYERS if (PACKAGE / name).is_dir()])
def test_subpackage_has_a_purpose_line(layer: str) -> None:
    init = PACKAGE / layer / "__init__.py"
    assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), f"{init} needs a docstring"
