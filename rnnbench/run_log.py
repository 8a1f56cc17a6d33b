"""What a run records in the store besides its metrics: parameters, ranking tags, baselines as runs, artifacts, and
the description of the experiment the runs are in."""
from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from rnnbench import config as configuration
from rnnbench import models as zoo
from rnnbench import registry, tracking
from rnnbench.plots import plot_attention, plot_learning_curve


def ranking_tags(spec) -> dict:
    return {"primary_metric": spec.primary_metric, "higher_is_better": spec.higher_is_better}


# A parameter value for what does not apply to a run: a baseline has no model options, training settings or seed.
NOT_APPLICABLE = "n/a"


def run_params(config: dict, model_name: str, seed: int, spec) -> dict:
    return {
        "task": config["task"], "model": model_name, "seed": seed, "experiment": config["experiment"],
        "protocol": configuration.PROTOCOL,
        "task_options": dict(spec.options) or config["task_options"], "model_options": config["model_options"],
        "train": config["train"], "dataset": dict(spec.dataset), "notes": dict(spec.notes),
    }


# A run "diverged" when its test loss (or lower-is-better primary metric) ends this many times above the worst of its
# task's naive baselines, or is not finite: such a run finished, but its numbers mean training failed.
DIVERGENCE_FACTOR = 10.0


def divergence(spec, test: dict) -> str:
    """Why a finished run counts as diverged, or "" when it does not."""
    names = ["loss"] + ([spec.primary_metric] if not spec.higher_is_better else [])
    for name in dict.fromkeys(names):
        value = test.get(f"test_{name}")
        if value is None:
            continue
        if not math.isfinite(value):
            return f"test {name} is {value}"
        naive = [float(m[name]) for m in spec.baselines.values() if name in m and math.isfinite(float(m[name]))]
        if naive and max(naive) > 0 and value > DIVERGENCE_FACTOR * max(naive):
            return (f"test {name} {value:.4g} is {value / max(naive):.3g} x the worst baseline's "
                    f"({max(naive):.4g}); training diverged (try a lower train.learning_rate)")
    return ""


def baseline_params(config: dict, name: str, spec, environment: dict) -> dict:
    """The parameter keys of a model run (`run_params`, env, xla, op_determinism), with `n/a` for what a baseline does
    not have, so MLflow's run comparison lines baselines up with models instead of showing "unknown"."""
    params = run_params(config, name, NOT_APPLICABLE, spec)
    params["model_options"] = {key: NOT_APPLICABLE for key in config["model_options"]}
    params["train"] = {key: NOT_APPLICABLE for key in config["train"]}
    return {**params, "env": environment, "xla": NOT_APPLICABLE, "op_determinism": NOT_APPLICABLE}


def experiment_description(spec, config: dict) -> str:
    """The MLflow experiment's description (markdown, shown above its runs table): what the task is, what the parent
    and child runs are, and the headline metric."""
    name, task = config["experiment"] or config["task"], config["task"]
    path = configuration.experiments_dir() / f"{name}.py"
    doc = configuration.load_experiment(name)[2] if path.is_file() else (registry.get_task(task).__doc__ or "")
    purpose = next((line.strip() for line in doc.splitlines() if line.strip()), "")
    headline = f"test_{spec.primary_metric}"
    baselines = ", ".join(f"`baseline-{b}`" for b in spec.baselines) or "none for this task"
    return "\n".join([
        f"rnnbench experiment {name} (task {task}): {purpose}",  # plain: the experiment list shows it unrendered
        "",
        f"**Headline metric: `{headline}`** ({'higher' if spec.higher_is_better else 'lower'} is better): on the test "
        f"split, with the weights of the best epoch by `{spec.monitor}`; cost: `params`, `sec_per_epoch`. MLflow's runs "
        f"table shows no metric columns until asked: *Columns* → *Metrics* → `{headline}` (or sort by it).",
        "",
        f"**Runs.** Each `rnnbench bench` is a parent run named `{name}` (`{name}-smoke` for the quick variant); "
        "its child runs are one per model and seed (`<model>-seed<N>`, tag `kind=model`, the Keras model logged as "
        f"`{task}-<model>`) and one per naive baseline ({baselines}; tag `kind=baseline`, metrics only, the same "
        "parameter keys with `n/a` where they do not apply). Tags `config_hash` and `run_key` tie runs to their "
        "configuration.",
        "",
        f"Report: `rnnbench report --task {name}`; settings, data and expected results: `experiments/{name}.py`.",
    ])


def log_baselines(tracker, spec, config, parent_id, environment) -> None:
    """Each baseline is a child run of kind 'baseline', so reports treat it as a row like any model."""
    for name in spec.baselines:
        log_baseline(tracker, spec, config, parent_id, environment, name)


def log_baseline(tracker, spec, config, parent_id, environment, name: str) -> bool:
    """Baseline `name` as a child run; False when the store already holds it (or another process is logging it)."""
    key = configuration.run_key(config, f"baseline:{name}", -1)
    if tracker.finished_run(key):
        return False
    run_id, _ = tracker.start_claimed_run(
        f"baseline-{name}",
        {"rnnbench_role": "child", "kind": "baseline", "task": config["task"], "model": name, "seed": "",
         "config_hash": configuration.config_hash(config), "experiment": config["experiment"],
         **ranking_tags(spec)},
        key, parent_id=parent_id,
    )
    if run_id is None:  # another process is logging it, or has
        return False
    tracker.log_params(run_id, baseline_params(config, name, spec, environment))
    tracker.log_metrics(run_id, {f"test_{k}": v for k, v in spec.baselines[name].items()})
    tracker.end_run(run_id, "FINISHED")
    return True


def log_run_artifacts(tracker, run_id, model, spec, config, model_name, seed, history, environment,
                      gradient_flow=None) -> None:
    """Resolved config, environment, cuDNN report, model summary, learning curve, attention map, gradient flow (a
    `RunGradientFlow`, when given), the task's own files, and the model itself with an input example and
    signature."""
    x, _ = spec.example_batch()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        resolved = {**config, "models": [model_name], "seeds": [seed]}
        (folder / "config.json").write_text(json.dumps(resolved, indent=2, default=str))
        (folder / "environment.json").write_text(json.dumps(environment, indent=2, default=str))
        (folder / "cudnn_report.json").write_text(json.dumps(zoo.cudnn_report(model), indent=2))
        lines: list[str] = []
        model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
        (folder / "model_summary.txt").write_text("\n".join(lines))
        plot_learning_curve(history, spec.primary_metric, folder / "learning_curve.png", title=f"{model_name} seed {seed}")
        weights = zoo.attention_weights(model, x[:4])
        if weights is not None:
            plot_attention(weights, folder / "attention.png", title=model_name)
        if gradient_flow is not None:
            gradient_flow.write(folder)
        if spec.artifacts:
            task_folder = folder / "task"
            task_folder.mkdir()
            spec.artifacts(model, task_folder)
        tracker.log_artifacts(run_id, folder)
    tracker.log_keras_model(run_id, model, x, np.asarray(model.predict_on_batch(x)),
                            requirements=[f"keras=={keras.__version__}", f"tensorflow=={tf.__version__}"],
                            name=tracking.logged_model_name(config["task"], model_name))
