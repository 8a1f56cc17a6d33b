"""A tiny registry of tasks and models: register by name, get by name, list the names.

Unknown names fail with the list of known ones, so a typo on the command line is answered with the fix.
"""
from __future__ import annotations

from typing import Callable, Dict

from rnnbench.errors import UserError

_REGISTRIES: Dict[str, Dict[str, Callable]] = {"task": {}, "model": {}}


class UnknownNameError(UserError, KeyError):
    """A task or model name that nobody registered."""

    def __str__(self) -> str:  # KeyError quotes its message; this one is meant to be read
        return self.args[0]


def _register(kind: str, name: str | None = None):
    def decorator(fn: Callable) -> Callable:
        key = name or fn.__name__
        existing = _REGISTRIES[kind].get(key)
        if existing is not None and existing is not fn and existing.__qualname__ != fn.__qualname__:
            raise ValueError(f"{kind} {key!r} is already registered by {existing.__module__}.{existing.__qualname__}")
        _REGISTRIES[kind][key] = fn
        return fn

    return decorator


def register_task(name: str | None = None):
    """Decorator: register a task loader `load(**options) -> TaskSpec` under `name` (default: function name)."""
    return _register("task", name)


def register_model(name: str | None = None):
    """Decorator: register a model builder `build(spec, **options) -> keras.Model` under `name`."""
    return _register("model", name)


def _ensure_loaded() -> None:
    # Importing the packages runs their @register decorators.
    import rnnbench.models  # noqa: F401
    import rnnbench.tasks  # noqa: F401


def _get(kind: str, name: str) -> Callable:
    _ensure_loaded()
    try:
        return _REGISTRIES[kind][name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRIES[kind])) or "(none)"
        raise UnknownNameError(f"unknown {kind} {name!r}; known {kind}s: {known}") from None


def get_task(name: str) -> Callable:
    return _get("task", name)


def get_model(name: str) -> Callable:
    return _get("model", name)


def list_tasks() -> list[str]:
    _ensure_loaded()
    return sorted(_REGISTRIES["task"])


def list_models() -> list[str]:
    _ensure_loaded()
    return sorted(_REGISTRIES["model"])
