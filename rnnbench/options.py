"""Declared options: a task states its options once, as a frozen dataclass whose fields carry type, default and help.

    @dataclasses.dataclass(frozen=True)
    class SineOptions:
        noise: float = option(0.1, "standard deviation of the Gaussian noise", minimum=0.0, exclusive=True)

The same declaration gives the loader's signature (`rnnbench.registry.register_task`), the command line's validation
(`--set task.noise=...`: type, choices, range), the text of `rnnbench list --task NAME`, and which options name files
(`path=True`), whose content rather than location identifies a run. Checks that relate several options go in the
dataclass's `__post_init__` and raise `UserError`.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Mapping, Optional, Sequence

from rnnbench.errors import UserError


def option(default: Any, help: str, *, choices: Optional[Sequence] = None, minimum: Optional[float] = None,
           maximum: Optional[float] = None, exclusive: bool = False, path: bool = False):
    """A dataclass field with its help line and checks. `exclusive` makes `minimum` a strict bound (> instead of >=);
    `path` marks a file or folder option. Sequence defaults become tuples, so the declaration stays immutable."""
    if isinstance(default, list):
        default = tuple(default)
    metadata = {"help": help, "choices": tuple(choices) if choices else None, "minimum": minimum,
                "maximum": maximum, "exclusive": exclusive, "path": path}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Declared:
    """One declared option, as `rnnbench list --task NAME` shows it."""

    name: str
    type: Any
    default: Any
    help: str
    choices: Optional[tuple] = None
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    exclusive: bool = False
    path: bool = False


def declared(options_class) -> list[Declared]:
    hints = typing.get_type_hints(options_class)
    found = []
    for field in dataclasses.fields(options_class):
        meta = field.metadata
        found.append(Declared(field.name, hints[field.name], field.default, meta.get("help", ""), meta.get("choices"),
                              meta.get("minimum"), meta.get("maximum"), bool(meta.get("exclusive")),
                              bool(meta.get("path"))))
    return found


def types_of(options_class) -> dict[str, Any]:
    """Option name -> type."""
    return {d.name: d.type for d in declared(options_class)}


def path_options(options_class) -> list[str]:
    return [d.name for d in declared(options_class) if d.path]


def describe_type(kind) -> str:
    return getattr(kind, "__name__", None) if not typing.get_args(kind) else str(kind).replace("typing.", "")


def _is_optional(kind) -> tuple[bool, Any]:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        return True, next(a for a in args if a is not type(None))
    return False, kind


def coerce(key: str, value: Any, kind) -> Any:
    """`value` (a string from the command line, or a Python value from a config file) as type `kind`."""
    optional, kind = _is_optional(kind)
    if optional and (value is None or (isinstance(value, str) and value.lower() in ("none", "null", ""))):
        return None
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (tuple, list) or kind in (tuple, list):
        inner = args[0] if args else str
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(coerce(key, item.strip() if isinstance(item, str) else item, inner) for item in items)
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value) if not isinstance(value, str) else int(value.replace("_", ""))
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind is str:
            if not isinstance(value, (str, int, float, bool)):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        raise UserError(f"{key}={value!r} is not a valid {describe_type(kind)}") from None
    return value


def check(key: str, value: Any, item: Declared) -> None:
    """Raises UserError when `value` is outside the declared choices or range (None passes: it means 'not given')."""
    if value is None:
        return
    if item.choices and value not in item.choices:
        raise UserError(f"{key} must be one of {', '.join(map(str, item.choices))}, got {value!r}")
    values = value if isinstance(value, tuple) else (value,)
    for one in values:
        if not isinstance(one, (int, float)) or isinstance(one, bool):
            continue
        if item.minimum is not None and (one <= item.minimum if item.exclusive else one < item.minimum):
            raise UserError(f"{key} must be {'>' if item.exclusive else '>='} {item.minimum:g}, got {value!r}")
        if item.maximum is not None and one > item.maximum:
            raise UserError(f"{key} must be <= {item.maximum:g}, got {value!r}")


def resolve(options_class, given: Mapping[str, Any], prefix: str = "task"):
    """An instance of `options_class` from `given` (names as declared): unknown names, wrong types and values out of
    range fail with a message naming the option and what it accepts."""
    items = {d.name: d for d in declared(options_class)}
    unknown = sorted(set(given) - set(items))
    if unknown:
        valid = ", ".join(f"{prefix}.{name}" for name in sorted(items))
        raise UserError(f"unknown option {prefix}.{unknown[0]}; valid {prefix} options: {valid}")
    values = {}
    for name, value in given.items():
        values[name] = coerce(f"{prefix}.{name}", value, items[name].type)
        check(f"{prefix}.{name}", values[name], items[name])
    return options_class(**values)


def as_dict(options) -> dict[str, Any]:
    """Every option of an instance, by name (the resolved options a spec records)."""
    return {field.name: getattr(options, field.name) for field in dataclasses.fields(options)}


def describe(options_class, prefix: str = "task") -> list[str]:
    """One line per option: name, type, default, help and checks."""
    lines = []
    for item in declared(options_class):
        checks = []
        if item.choices:
            checks.append("one of " + "|".join(map(str, item.choices)))
        if item.minimum is not None:
            checks.append(f"{'>' if item.exclusive else '>='} {item.minimum:g}")
        if item.maximum is not None:
            checks.append(f"<= {item.maximum:g}")
        if item.path:
            checks.append("a path; its content identifies the run")
        extra = f" ({'; '.join(checks)})" if checks else ""
        lines.append(f"{prefix}.{item.name} [{describe_type(item.type)}, default {item.default!r}]: {item.help}{extra}")
    return lines
