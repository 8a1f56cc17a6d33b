"""A tiny registry of tasks and models: register by name, get by name, list the names.

Unknown names fail with the list of known ones, so a typo on the command line is answered with the fix. Tasks and
models are discovered: every module of the packages in `PACKAGES` is imported on first use, so a new task or model
family is one new file there. This module imports neither package (by name only, when first asked), so the packages
can import it without a cycle.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import inspect
import typing
from pathlib import Path
from typing import Callable, Dict, Optional

from rnnbench import options as declared_options
from rnnbench.errors import UserError

PACKAGES = {"task": "rnnbench.tasks", "model": "rnnbench.models"}
_REGISTRIES: Dict[str, Dict[str, Callable]] = {"task": {}, "model": {}}
_TASKS: Dict[str, "TaskEntry"] = {}


class UnknownNameError(UserError, KeyError):
    """A task or model name that nobody registered."""

    def __str__(self) -> str:  # KeyError quotes its message; this one is meant to be read
        return self.args[0]


@dataclasses.dataclass(frozen=True)
class TaskEntry:
    """What a task declares when it registers, beyond its loader: all of it usable without loading any data.

    options: the frozen dataclass of its options (`rnnbench.options`).
    report_notes(summary DataFrame) -> markdown: conclusions only this task can draw, added to its report.
    generate(run_id, prompt, length, temperature, seed) -> str: sampling from a finished run (`rnnbench generate`).
    predict(run_id, inputs) -> [line]: the run's model applied to new raw inputs, as lines to print
        (`rnnbench predict`).
    """

    name: str
    load: Callable
    options: Optional[type] = None
    report_notes: Optional[Callable] = None
    generate: Optional[Callable] = None
    predict: Optional[Callable] = None


def _add(kind: str, key: str, fn: Callable) -> None:
    existing = _REGISTRIES[kind].get(key)
    if existing is not None and existing is not fn and existing.__qualname__ != fn.__qualname__:
        raise ValueError(f"{kind} {key!r} is already registered by {existing.__module__}.{existing.__qualname__}")
    _REGISTRIES[kind][key] = fn


def _loader(fn: Callable, options_class: type) -> Callable:
    """`load(*, batch_size, **options) -> TaskSpec` around `fn(options, batch_size=...)`, with the signature the
    declaration implies (so `inspect.signature` and help() show the real options)."""
    default_batch = inspect.signature(fn).parameters["batch_size"].default

    def load(*, batch_size: int = default_batch, **given):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise UserError(f"train.batch_size must be an integer >= 1, got {batch_size!r}")
        return fn(declared_options.resolve(options_class, given), batch_size=batch_size)

    parameters = [inspect.Parameter("batch_size", inspect.Parameter.KEYWORD_ONLY, default=default_batch,
                                    annotation=int)]
    hints = typing.get_type_hints(options_class)
    for item in dataclasses.fields(options_class):
        parameters.append(inspect.Parameter(item.name, inspect.Parameter.KEYWORD_ONLY, default=item.default,
                                            annotation=hints[item.name]))
    load.__signature__ = inspect.Signature(parameters, return_annotation=inspect.signature(fn).return_annotation)
    load.__annotations__ = {"batch_size": int, **hints}
    load.__name__, load.__qualname__, load.__module__ = fn.__name__, fn.__qualname__, fn.__module__
    load.__doc__ = (fn.__doc__ or "").rstrip() + "\n\nOptions:\n  " + "\n  ".join(
        declared_options.describe(options_class))
    load.options = options_class
    return load


def register_task(name: str | None = None, *, options: type | None = None, report_notes: Callable | None = None,
                  generate: Callable | None = None, predict: Callable | None = None):
    """Decorator: register a task loader under `name` (default: function name).

    With `options` (a frozen dataclass of `rnnbench.options.option` fields) the decorated function is
    `load(options, *, batch_size) -> TaskSpec` and the decorator returns `load(*, batch_size, **options)`, which
    validates the options first. `report_notes`, `generate` and `predict` are the task's optional hooks (see
    `TaskEntry`).
    """
    def decorator(fn: Callable) -> Callable:
        key = name or fn.__name__
        load = _loader(fn, options) if options is not None else fn
        _add("task", key, load)
        _TASKS[key] = TaskEntry(key, load, options, report_notes, generate, predict)
        return load

    return decorator


# What kind of sequence model a builder makes: the leaderboards set the best recurrent model against the best of the
# others (`ALTERNATIVE_FAMILIES`), and the plots draw each family with its own marker.
MODEL_FAMILIES = ("recurrent", "transformer", "reservoir", "convolutional")
ALTERNATIVE_FAMILIES = tuple(f for f in MODEL_FAMILIES if f != "recurrent")
_FAMILIES: Dict[str, str] = {}


def register_model(name: str | None = None, *, family: str):
    """Decorator: register a model builder `build(spec, **options) -> keras.Model` under `name`, of `family` (one of
    `MODEL_FAMILIES`; recurrent models with attention are "recurrent")."""
    if family not in MODEL_FAMILIES:
        raise ValueError(f"model family {family!r} is not one of {MODEL_FAMILIES}")

    def decorator(fn: Callable) -> Callable:
        _add("model", name or fn.__name__, fn)
        _FAMILIES[name or fn.__name__] = family
        return fn

    return decorator


def model_family(name: str) -> str:
    """The family a registered model was registered with (an unknown name fails with the known ones)."""
    get_model(name)
    return _FAMILIES[name]


def _ensure_loaded(kind: str) -> None:
    importlib.import_module(PACKAGES[kind])  # importing a package runs its modules' @register decorators


def _get(kind: str, name: str) -> Callable:
    _ensure_loaded(kind)
    try:
        return _REGISTRIES[kind][name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRIES[kind])) or "(none)"
        raise UnknownNameError(f"unknown {kind} {name!r}; known {kind}s: {known}") from None


def get_task(name: str) -> Callable:
    return _get("task", name)


def get_task_entry(name: str) -> TaskEntry:
    get_task(name)
    return _TASKS[name]


def get_model(name: str) -> Callable:
    return _get("model", name)


def declared_names(kind: str) -> list[str]:
    """The names the modules of `PACKAGES[kind]` register, read from their source without importing them (so without
    TensorFlow): every `register_*("name", ...)` call or decorator that names its entry literally. A test checks this
    against what importing registers."""
    spec = importlib.util.find_spec(PACKAGES[kind])  # imports the parent package only, not this one
    names = set()
    for folder in spec.submodule_search_locations:
        for path in sorted(Path(folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.startswith(
                        "register_") and node.args and isinstance(node.args[0], ast.Constant) and isinstance(
                        node.args[0].value, str):
                    names.add(node.args[0].value)
    return sorted(names)


def list_tasks() -> list[str]:
    _ensure_loaded("task")
    return sorted(_REGISTRIES["task"])


def list_models() -> list[str]:
    _ensure_loaded("model")
    return sorted(_REGISTRIES["model"])
