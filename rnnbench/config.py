"""Benchmark configurations: experiment files, command-line overrides, validation and the configuration hash.

An experiment is a Python file `experiments/<name>.py` whose docstring states the command, the expected result and
the hardware, and which defines `CONFIG` (task, models, seeds, task_options, model_options, train) and `SMOKE`
(dotted overrides for a quick run of the same path). Overrides use dotted keys: `task.<option>`, `model.<option>`,
`train.<option>`, `models`, `seeds`. Valid option names and types come from the task loader's and the model builders'
signatures, so a new option is valid as soon as a function accepts it.

An experiment may also define `SWEEP = {"task.length": [50, 100, 200]}` (one setting, the values to try) and
`SMOKE_SWEEP` (the values for --smoke): `resolve_sweep` gives one ordinary configuration per value, each with its own
configuration hash, which `rnnbench bench --sweep` runs one after another into the experiment's MLflow experiment.
"""
from __future__ import annotations

import copy
import hashlib
import importlib.util
import inspect
import json
import os
import typing
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from rnnbench import options, registry
from rnnbench.errors import UserError

TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 32,
    "learning_rate": 1e-3,
    "clipnorm": 1.0,  # global gradient-norm clipping; 0 turns it off
    "patience": 0,  # early stopping on the task's monitor; 0 turns it off
    "jit_compile": "auto",  # "auto", "true" or "false": Keras's XLA switch
    "max_minutes": 0.0,  # stop training a run after this many minutes (0: no limit); the best epoch still counts
    "reduce_lr_patience": 0,  # halve the learning rate after this many epochs without improvement (0: never)
    # Validate this many times per pass over the training data; the best weights, patience and reduce_lr_patience
    # then count validations. For models that overfit within an epoch or two, whose best point falls between epochs.
    "validations_per_epoch": 1,
    "mixed_precision": False,  # Keras's mixed_float16 policy (float16 compute, float32 weights and outputs)
    # Train one run data-parallel on this many devices (tf.distribute.MirroredStrategy over the first N GPUs, or
    # logical CPU devices), the batch size staying the global one; 1: no distribution.
    "devices": 1,
    # Measure the gradient flow through time (rnnbench.gradient_flow) at initialisation and at the best weights;
    # a diagnostic on one batch, which leaves training untouched.
    "gradient_flow": True,
}
TRAIN_TYPES = {"epochs": int, "batch_size": int, "learning_rate": float, "clipnorm": float, "patience": int,
               "jit_compile": str, "max_minutes": float, "reduce_lr_patience": int,
               "mixed_precision": bool, "validations_per_epoch": int, "devices": int,
               "gradient_flow": bool}
SECTIONS = {"task": "task_options", "model": "model_options", "train": "train"}


def data_path(*parts: str) -> Optional[str]:
    """A file under `RNNBENCH_DATA_DIR` (the folder of datasets on this machine), for experiment configs; None if
    the variable is unset, so the task asks for the file instead of guessing a path."""
    root = os.environ.get("RNNBENCH_DATA_DIR")
    return str(Path(root, *parts)) if root else None


def experiments_dir() -> Path:
    """`RNNBENCH_EXPERIMENTS` or the `experiments/` folder of the source checkout."""
    return Path(os.environ.get("RNNBENCH_EXPERIMENTS") or Path(__file__).resolve().parents[1] / "experiments")


def list_experiments() -> dict[str, str]:
    """Experiment name -> first line of its docstring."""
    found = {}
    for path in sorted(experiments_dir().glob("*.py")):
        if not path.name.startswith("_"):
            doc = (_load_module(path).__doc__ or "").strip().splitlines()
            found[path.stem] = doc[0] if doc else ""
    return found


def _load_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"rnnbench_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_experiment(name: str) -> tuple[dict, dict, str]:
    """(CONFIG, SMOKE, docstring) of experiments/<name>.py."""
    path = experiments_dir() / f"{name}.py"
    if not path.is_file():
        known = ", ".join(sorted(list_experiments())) or "(none)"
        raise UserError(f"no experiment {name!r} in {experiments_dir()}; known experiments: {known}")
    module = _load_module(path)
    if not isinstance(getattr(module, "CONFIG", None), dict):
        raise UserError(f"{path} must define a dict CONFIG")
    return copy.deepcopy(module.CONFIG), copy.deepcopy(getattr(module, "SMOKE", {})), module.__doc__ or ""


def controls() -> dict[str, str]:
    """Experiment -> the experiment it declares as its control (`CONTROL = "name"` in its file), for those that do;
    `rnnbench compare` and the reports then put the two side by side."""
    found = {}
    for path in sorted(experiments_dir().glob("*.py")):
        control = None if path.name.startswith("_") else getattr(_load_module(path), "CONTROL", None)
        if control is not None:
            if not isinstance(control, str) or not (experiments_dir() / f"{control}.py").is_file():
                raise UserError(f"{path}: CONTROL must name another experiment in {experiments_dir()}, got {control!r}")
            found[path.stem] = control
    return found


def load_sweep(name: str, smoke: bool = False) -> dict[str, list]:
    """The SWEEP of experiments/<name>.py ({dotted setting: [values]}; SMOKE_SWEEP with `smoke`, when it has one), or
    {} when it defines none."""
    path = experiments_dir() / f"{name}.py"
    if not path.is_file():
        return {}
    module = _load_module(path)
    sweep = getattr(module, "SMOKE_SWEEP", None) if smoke else None
    sweep = sweep if sweep is not None else getattr(module, "SWEEP", None)
    if sweep is None:
        return {}
    if not isinstance(sweep, dict) or len(sweep) != 1:
        raise UserError(f"{path}: SWEEP must be a dict of one setting and its values, e.g. "
                        "{'task.length': [50, 100]}; sweep one setting per experiment")
    (key, values), = sweep.items()
    section, _, option = str(key).partition(".")
    if section not in SECTIONS or not option:
        raise UserError(f"{path}: SWEEP setting {key!r} must be task.<option>, model.<option> or train.<option>")
    values = list(values) if isinstance(values, (list, tuple)) else []
    if not values or len(set(map(repr, values))) != len(values):
        raise UserError(f"{path}: SWEEP[{key!r}] must be a non-empty list of distinct values")
    return {key: copy.deepcopy(values)}


def option_types(fn) -> dict[str, Any]:
    """Option name -> expected type: a task's declared options, or a builder's keyword parameters."""
    if getattr(fn, "options", None) is not None:
        return options.types_of(fn.options)
    hints = typing.get_type_hints(fn)
    types = {}
    for name, parameter in inspect.signature(fn).parameters.items():
        if name in ("spec", "name") or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        types[name] = hints.get(name, type(parameter.default) if parameter.default is not parameter.empty else str)
    return types


def valid_keys(task: str, models: Sequence[str]) -> dict[str, dict[str, Any]]:
    loader_types = option_types(registry.get_task(task))
    loader_types.pop("batch_size", None)  # set through train.batch_size
    model_types: dict[str, Any] = {}
    for model in models:
        model_types.update(option_types(registry.get_model(model)))
    return {"task": loader_types, "model": model_types, "train": dict(TRAIN_TYPES)}


coerce = options.coerce


def apply_overrides(config: dict, overrides: Mapping[str, Any]) -> dict:
    """Applies dotted overrides (`train.epochs`, `task.noise`, `models`, `seeds`) to a copy of `config`."""
    config = copy.deepcopy(config)
    for key, value in overrides.items():
        if key in ("models", "seeds"):
            config[key] = value
            continue
        section, _, option = key.partition(".")
        if section not in SECTIONS or not option:
            raise UserError(
                f"unknown setting {key!r}: use task.<option>, model.<option>, train.<option>, models or seeds"
            )
        config.setdefault(SECTIONS[section], {})[option] = value
    return config


def parse_sets(pairs: Sequence[str]) -> dict[str, str]:
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--set expects key=value, got {pair!r}")
        parsed[key.strip()] = value.strip()
    return parsed


def _as_list(key: str, value, kind) -> list:
    items = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else [value]
    items = [i.strip() if isinstance(i, str) else i for i in items if not (isinstance(i, str) and not i.strip())]
    if not items:
        raise UserError(f"{key} must not be empty")
    return [coerce(key, i, kind) for i in items]


def validate(config: dict) -> dict:
    """Checks names, option keys, types and ranges; returns the resolved config with defaults filled in."""
    task = config.get("task")
    if not task:
        raise UserError("the configuration names no task; pass --task (see `rnnbench list`)")
    registry.get_task(task)
    models = _as_list("models", config.get("models") or [], str)
    for model in models:
        registry.get_model(model)
    seeds = _as_list("seeds", config.get("seeds", [0]), int)
    keys = valid_keys(task, models)
    resolved = {"task": task, "models": models, "seeds": seeds}
    for section, field in SECTIONS.items():
        given = dict(config.get(field) or {})
        out = dict(TRAIN_DEFAULTS) if section == "train" else {}
        for option, value in given.items():
            if option not in keys[section]:
                valid = ", ".join(f"{section}.{k}" for k in sorted(keys[section]))
                raise UserError(f"unknown option {section}.{option}; valid {section} options: {valid}")
            out[option] = coerce(f"{section}.{option}", value, keys[section][option])
        resolved[field] = out
    declared = registry.get_task_entry(task).options
    if declared is not None:  # ranges, choices and checks across options, before any data is read
        options.resolve(declared, resolved["task_options"])
    unknown = set(config) - {"task", "models", "seeds", *SECTIONS.values(), "experiment", "smoke", "command",
                             "overridden", "sweep"}
    if unknown:
        raise UserError(f"unknown configuration keys {sorted(unknown)}; valid: task, models, seeds, "
                        + ", ".join(SECTIONS.values()))
    train = resolved["train"]
    for option in ("epochs", "batch_size", "validations_per_epoch", "devices"):
        if train[option] < 1:
            raise UserError(f"train.{option} must be >= 1, got {train[option]}")
    if train["learning_rate"] <= 0:
        raise UserError(f"train.learning_rate must be > 0, got {train['learning_rate']}")
    for option in ("patience", "clipnorm", "max_minutes", "reduce_lr_patience"):
        if train[option] < 0:
            raise UserError(f"train.{option} must be >= 0, got {train[option]}")
    if str(train["jit_compile"]).lower() not in ("auto", "true", "false"):
        raise UserError(f"train.jit_compile must be auto, true or false, got {train['jit_compile']!r}")
    if any(seed < 0 for seed in seeds):
        raise UserError(f"seeds must be >= 0, got {seeds}")
    resolved["experiment"] = config.get("experiment", "")
    resolved["smoke"] = bool(config.get("smoke", False))
    return resolved


def resolve(task: Optional[str] = None, experiment: Optional[str] = None, smoke: bool = False,
            models: Optional[str] = None, seeds: Optional[str] = None, epochs: Optional[int] = None,
            sets: Sequence[str] = (), point: Optional[Mapping[str, Any]] = None) -> dict:
    """The configuration of one `bench` call: experiment file (default: the task's own), then --smoke, then the sweep
    `point` (one value of the experiment's SWEEP, part of the experiment as its file states it), then flags."""
    name = experiment or task
    if name and (experiments_dir() / f"{name}.py").is_file():
        config, smoke_overrides, _ = load_experiment(name)
    elif experiment:
        load_experiment(experiment)  # raises with the list of known experiments
    else:
        config, smoke_overrides = {"task": task, "models": ["lstm", "gru"], "seeds": [0]}, {}
    if task and config.get("task") != task:
        raise UserError(f"experiment {name!r} is for task {config.get('task')!r}, not {task!r}")
    config["experiment"] = name or config.get("task")
    if smoke:
        config = apply_overrides(config, smoke_overrides)
        config["smoke"] = True
    if point:
        config = apply_overrides(config, point)
    flags: dict[str, Any] = {}
    if models is not None:
        flags["models"] = models
    if seeds is not None:
        flags["seeds"] = seeds
    if epochs is not None:
        flags["train.epochs"] = epochs
    flags.update(parse_sets(sets))
    resolved = validate(apply_overrides(config, flags))
    # What the report's "Reproduce" line prints, and whether this is the experiment exactly as its file states it.
    given = [f"--{key} {value}" for key, value in (("models", models), ("seeds", seeds), ("epochs", epochs))
             if value is not None] + [f"--set {pair}" for pair in sets]
    target = f"--experiment {experiment}" if experiment else f"--task {task}"
    swept = ["--sweep"] if point else []
    resolved["command"] = " ".join(["rnnbench bench", target] + ["--smoke"] * smoke + swept + given) if given else (
        f"make bench TASK={name}" + (" SMOKE=1" if smoke else "") + (" SWEEP=1" if point else ""))
    resolved["overridden"] = bool(flags)
    if point:
        resolved["sweep"] = dict(point)
    return resolved


def resolve_sweep(task: Optional[str] = None, experiment: Optional[str] = None, smoke: bool = False,
                  models: Optional[str] = None, seeds: Optional[str] = None, epochs: Optional[int] = None,
                  sets: Sequence[str] = ()) -> list[dict]:
    """One configuration per value of the experiment's SWEEP (SMOKE_SWEEP with `smoke`), in the file's order; each
    records its value as `config["sweep"]`. Flags apply to every value; one that sets the swept setting is refused."""
    name = experiment or task
    sweep = load_sweep(name, smoke) if name else {}
    if not sweep:
        with_sweep = [n for n in list_experiments() if load_sweep(n)]
        raise UserError(f"experiment {name!r} defines no SWEEP, so --sweep has nothing to run; drop --sweep, or "
                        f"use an experiment that has one: {', '.join(with_sweep) or '(none)'}")
    (key, values), = sweep.items()
    given = set(parse_sets(sets)) | ({"train.epochs"} if epochs is not None else set())
    if key in given:
        raise UserError(f"{key} is what --sweep varies (SWEEP of experiments/{name}.py); drop it from the flags, or "
                        "drop --sweep to run one grid at the value you set")
    return [resolve(task, experiment, smoke, models, seeds, epochs, sets, point={key: value}) for value in values]


def sweep_values(configs: Sequence[dict], chosen: str) -> list[dict]:
    """The configurations of `configs` (one sweep, `resolve_sweep`) whose value is among the comma-separated
    `chosen`, in the sweep's order: a long sweep can run a few values per session, each value's report kept."""
    (key,) = configs[0]["sweep"]
    known = [str(config["sweep"][key]) for config in configs]
    wanted = [value.strip() for value in chosen.split(",") if value.strip()]
    unknown = [value for value in wanted if value not in known]
    if unknown or not wanted:
        raise UserError(f"--values {chosen!r}: {', '.join(unknown) or 'no value'} not among the {key} values of the "
                        f"sweep ({', '.join(known)}); name some of those, comma-separated")
    return [config for config, value in zip(configs, known) if value in wanted]


# Bumped whenever a change to rnnbench alters the numbers a config produces (data order, initialisation, kernels),
# so that runs finished under an earlier protocol are neither skipped as done nor mixed into this one's reports.
# 2: per-run training order, jit policy per cell. 3: no XLA for variable-length inputs (speech).
PROTOCOL = 3
# Training options added after runs of this protocol existed, whose default is what those runs did: they enter the
# hash only when set otherwise, so adding them leaves earlier runs identifiable (skipped on rerun, reported).
HASHED_ONLY_WHEN_SET = {"mixed_precision", "validations_per_epoch", "devices", "gradient_flow"}


def content_fingerprint(path: str | Path) -> str:
    """sha256 of a file's bytes, or of a folder's files (relative names and contents); 'missing:<name>' when absent.

    File digests are kept per (path, size, modification time), so hashing a grid's run keys reads each file once.
    """
    root = Path(path).expanduser()
    if not root.exists():
        return f"missing:{root.name}"
    files = [root] if root.is_file() else sorted(f for f in root.rglob("*") if f.is_file())
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _FILE_DIGESTS:
            file_digest = hashlib.sha256()
            with open(file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    file_digest.update(block)
            _FILE_DIGESTS[key] = file_digest.hexdigest()
        digest.update(f"{file.relative_to(root) if file != root else ''}\0{_FILE_DIGESTS[key]}\n".encode())
    return digest.hexdigest()


_FILE_DIGESTS: dict[tuple, str] = {}


def _located_by_content(task: str, task_options: Mapping) -> dict:
    """Task options with every path option replaced by its data's fingerprint: the same data anywhere on disk, or on
    another machine, gives the same configuration hash."""
    declared = registry.get_task_entry(task).options
    located = dict(task_options)
    for name in (options.path_options(declared) if declared is not None else ()):
        if located.get(name) is not None:
            located[name] = {"content_sha256": content_fingerprint(located[name])}
    return located


def config_hash(config: Mapping) -> str:
    """Identifies what a run computes, apart from which model and seed: task, options, training settings, protocol.

    Files named by options enter by content, not by location.
    """
    shared = {k: config[k] for k in ("task", "task_options", "model_options", "train")}
    shared["task_options"] = _located_by_content(config["task"], config["task_options"])
    shared["train"] = {k: v for k, v in shared["train"].items()
                       if not (k in HASHED_ONLY_WHEN_SET and v == TRAIN_DEFAULTS[k])}
    shared["protocol"] = PROTOCOL
    return hashlib.sha256(json.dumps(shared, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_key(config: Mapping, model: str, seed: int) -> str:
    return hashlib.sha256(f"{config_hash(config)}|{model}|{seed}".encode()).hexdigest()[:16]
