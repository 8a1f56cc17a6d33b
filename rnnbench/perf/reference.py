"""What perf trains: each task's reference configuration (its experiment's model and training settings on the
experiment's SMOKE slice of the data), checked `--set` task options, and the loaded tasks shared by the sections."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from rnnbench import compute, registry, runner
from rnnbench import config as configuration
from rnnbench.errors import UserError
from rnnbench.options import coerce
from rnnbench.perf.sizes import QUICK_MODEL_OPTIONS, Sizes
from rnnbench.spec import TaskSpec

_loaded_specs: dict[str, TaskSpec] = {}  # by configuration hash; emptied at the start of each run


def reference_config(task: str, sizes: Sizes, task_options: Optional[dict] = None) -> dict:
    """The runner configuration perf trains a task's reference model with: the experiment's model and training
    settings, its SMOKE slice of the data, no downloads, then `task_options` (strings from --set, validated)."""
    if not (configuration.experiments_dir() / f"{task}.py").is_file():
        raise UserError(f"no experiments/{task}.py: perf takes the reference model and the data slice of a task "
                        "from its experiment file")
    smoke = configuration.resolve(task=task, smoke=True)
    config = smoke if sizes.quick else {**configuration.resolve(task=task), "task_options": smoke["task_options"]}
    if sizes.quick:
        config = {**config, "model_options": dict(QUICK_MODEL_OPTIONS)}
    accepted = configuration.option_types(registry.get_task(task))
    if "download" in accepted:
        config["task_options"] = {**config["task_options"], "download": False}
    config["task_options"].update(checked_task_options(task, task_options or {}))
    return config


def overhead_config(sizes: Sizes) -> dict:
    """The sine experiment as the runner-overhead section trains it: its full training set (--quick: the smoke one)."""
    if sizes.quick:
        return {**configuration.resolve(task="sine", smoke=True), "model_options": dict(QUICK_MODEL_OPTIONS)}
    return configuration.resolve(task="sine")


def checked_task_options(task: str, options: dict) -> dict:
    """`options` (strings from --set) as the types the task's loader declares; unknown names are refused."""
    accepted = configuration.option_types(registry.get_task(task))
    accepted.pop("batch_size", None)  # the experiment's train.batch_size sets it
    checked = {}
    for option, value in options.items():
        if option not in accepted:
            raise UserError(f"--set {task}.{option}: task {task} has no option {option!r}; its options: "
                            + ", ".join(sorted(accepted)))
        checked[option] = coerce(f"--set {task}.{option}", value, accepted[option])
    return checked


def portable_paths(text: str) -> str:
    """`text` with the data folders of this machine written as the variables that name them."""
    for variable in ("RNNBENCH_DATA_DIR", "TFDS_DATA_DIR"):
        folder = os.environ.get(variable)
        if folder:
            text = text.replace(str(Path(folder)), f"${variable}")
    return text


def load_spec(config: dict) -> TaskSpec:
    """`runner.load_task`, once per configuration in a run (the quick run's sections share one sine slice)."""
    key = configuration.config_hash(config)
    if key not in _loaded_specs:
        _loaded_specs[key] = runner.load_task(config)
    compute.set_seed(0)
    return _loaded_specs[key]


def forget_loaded_tasks() -> None:
    """Called at the start of a run, so that it loads its tasks afresh."""
    _loaded_specs.clear()
