"""The layout's rules, checked on the source: file sizes, no import cycle, who may import tasks, models and mlflow."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rnnbench"
# Libraries both sides use: they must never import a task or a model.
SHARED = ("attention", "audio", "ctc", "errors", "forecasting", "options", "pipeline", "registry", "spec", "text",
          "tfds_data", "tracking", "environment", "config", "compute", "callbacks", "checkpoint", "measure", "plots",
          "streaming", "report", "optimizers", "gradient_flow", "state")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """rnnbench modules `name` imports anywhere in its file (function-level imports included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_file_over_400_lines(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= 400, f"{MODULES[name]} has {lines} lines; split it by responsibility"


def test_every_module_says_what_it_is_for():
    missing = [name for name, path in MODULES.items() if not ast.get_docstring(ast.parse(path.read_text()))]
    assert not missing, f"modules without a docstring: {missing}"


def test_no_import_cycle():
    """Depth-first search for a cycle; a package importing its own submodules (discovery) is not one, since the
    submodules never import their package's __init__ back (checked: a package's __init__ is not in their imports)."""
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for target in GRAPH[node]:
            if node.startswith(target + "."):  # a submodule's implicit parent-package import
                continue
            if state.get(target) == 1:
                cycle = trail[trail.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if not state.get(target):
                visit(target, trail + [target])
        state[node] = 2

    for module in sorted(GRAPH):
        if not state.get(module):
            visit(module, [module])


@pytest.mark.parametrize("name", SHARED)
def test_shared_libraries_import_neither_tasks_nor_models(name):
    leaked = {t for t in GRAPH[f"rnnbench.{name}"] if t.startswith(("rnnbench.tasks", "rnnbench.models"))}
    assert not leaked, f"rnnbench.{name} imports {sorted(leaked)}"


def test_tasks_do_not_import_models_and_models_do_not_import_tasks():
    for name, targets in GRAPH.items():
        if name.startswith("rnnbench.tasks"):
            assert not {t for t in targets if t.startswith("rnnbench.models")}, name
        if name.startswith("rnnbench.models"):
            assert not {t for t in targets if t.startswith("rnnbench.tasks")}, name


def test_only_tracking_imports_mlflow():
    users = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "mlflow" or n.startswith("mlflow.") for n in names):
                users.append(name)
    assert set(users) == {"rnnbench.tracking"}, sorted(set(users))


def test_the_checker_finds_a_cycle(monkeypatch):
    """The cycle check itself can fail."""
    monkeypatch.setitem(GRAPH, "rnnbench.spec", GRAPH["rnnbench.spec"] | {"rnnbench.runner"})
    with pytest.raises(AssertionError, match="import cycle"):
        test_no_import_cycle()


def test_names_read_from_the_sources_are_the_registered_ones():
    from rnnbench import registry

    def shipped(kind):  # tests may register their own models in this process; those are not in the sources
        get = registry.get_task if kind == "task" else registry.get_model
        listed = registry.list_tasks() if kind == "task" else registry.list_models()
        return [name for name in listed if get(name).__module__.startswith("rnnbench.")]

    assert registry.declared_names("task") == shipped("task")
    assert registry.declared_names("model") == shipped("model")


def test_listing_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys; from rnnbench.cli import main; main(['list']); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "lstm_attention" in out and "speech_digits" in out
    assert out.strip().splitlines()[-1] == "False False"
