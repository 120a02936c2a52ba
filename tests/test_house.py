"""The shape of the package, held by tests: no import cycle, no module past 300 lines, no private attribute of
a dependency outside ``xtuner_recipes/compat/``, and checks whose declarations the runner can order."""

import ast
import dataclasses
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "xtuner_recipes"


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``path`` imports, at module level or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycle():
    known = modules()
    # A package's __init__ re-exporting its children is the package, not a cycle through it.
    graph = {name: {other for other in imports(path, set(known)) if other != name
                    and not (path.name == "__init__.py" and other.startswith(name + "."))}
             for name, path in known.items()}
    assert cycles(graph) == []


def test_cycles_are_found_where_there_are_some():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_longer_than_300_lines():
    long = {str(path.relative_to(PACKAGE)): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 300}
    assert long == {}


def private_uses(tree: ast.Module) -> list[str]:
    """``x._name`` (not ``self._name``, not a dunder) and ``getattr(x, "_name")`` in a module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append(f"{ast.unparse(node)} (line {node.lineno})")
        elif (isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "hasattr", "setattr")
              and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
              and str(node.args[1].value).startswith("_") and not str(node.args[1].value).startswith("__")):
            found.append(f"{ast.unparse(node)} (line {node.lineno})")
    return found


def test_private_attributes_are_reached_only_in_the_compat_modules():
    outside = {str(path.relative_to(PACKAGE)): uses for path in PACKAGE.rglob("*.py")
               if "compat" not in path.parts and (uses := private_uses(ast.parse(path.read_text(encoding="utf-8"))))}
    # os._exit is public API (documented, named so to stand apart from sys.exit).
    outside = {name: uses for name, uses in outside.items() if any(not u.startswith("os._exit") for u in uses)}
    assert outside == {}


def test_the_private_scan_sees_a_private_attribute():
    assert private_uses(ast.parse("config._cfg_dict\nself._x\ngetattr(t, '_tokenizer')")) == [
        "config._cfg_dict (line 1)", "getattr(t, '_tokenizer') (line 3)"]


def test_every_check_declares_what_the_runner_can_order():
    from xtuner_recipes.findings import CODES
    from xtuner_recipes.validate import checks
    from xtuner_recipes.validate.runner import BASE

    registered = checks.registered()
    order = checks.ordered(registered, set(BASE))
    assert [c.name for c in order][:2] == ["source", "load"] and len(order) == len(registered)
    names = [c.name for c in registered]
    assert len(names) == len(set(names))
    emitted = {code for c in registered for code in c.codes}
    # Every validate code is some check's to emit (E005-E012 beyond the machine's are doctor's alone).
    doctor_only = {"E009", "E011"}
    assert {code for code in CODES if code not in doctor_only} <= emitted | {"E005"}
    for level in checks.LEVELS:
        assert all(c.level in checks.LEVELS[:checks.LEVELS.index(level) + 1] for c in checks.up_to(level))


def test_the_order_follows_the_declarations_and_a_missing_fact_is_refused():
    from xtuner_recipes.validate.checks import Check, ordered

    def make(name, reads=(), provides=()):
        return Check(name, lambda: None, "full", (), reads, provides)

    late, early = make("late", reads=("x",)), make("early", provides=("x",))
    assert [c.name for c in ordered([late, early], set())] == ["early", "late"]
    with pytest.raises(ValueError, match="no check provides"):
        ordered([late], set())
    with pytest.raises(ValueError, match="read each other"):
        ordered([make("a", ("x",), ("y",)), make("b", ("y",), ("x",))], set())


def test_a_failing_check_skips_its_dependents_and_says_so(tmp_path, monkeypatch):
    """The data check raising (a bug of ours): internal_error names it, the schedule, memory and time checks that
    read its samples are listed in `skipped`, and checks that don't need them still run."""
    from xtuner_recipes.validate import checks
    from xtuner_recipes.validate.runner import validate_config

    config = tmp_path / "c.py"
    config.write_text("lr = 1e-4\nmodel = dict(type='x')\ntrain_dataloader = dict(batch_size=1)\n"
                      "train_cfg = dict(max_epochs=1)\noptim_wrapper = dict()\n")
    data = next(c for c in checks.registered() if c.name == "data")

    def broken(**facts):
        raise RuntimeError("boom")

    broken.__module__ = data.run.__module__  # registered where the data check is

    monkeypatch.setattr(checks, "REGISTRY", [dataclasses.replace(c, run=broken) if c is data else c
                                             for c in checks.REGISTRY])
    report = validate_config(str(config), tokenizer_process=False)
    assert report.internal_error == "internal error in the data check: RuntimeError: boom"
    skipped = {line.split(":")[0] for line in report.skipped}
    assert {"schedule", "memory", "time", "lr schedule"} <= skipped and "environment" not in skipped
    assert all("samples" in line or "schedule" in line for line in report.skipped)
    assert "launch" in report.stats and report.machine is not None  # the settings and environment checks ran
