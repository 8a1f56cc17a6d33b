"""results/perf/README.md and its plots, from a run's measurements and the rest of its record (perf.json): its text is
report.md filled in (sentences that depend on the figures come from sentences.md); `render` redraws an earlier run's."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from rnnbench.errors import UserError
from rnnbench.perf import prose
from rnnbench.perf.charts import plot_kernels, plot_tasks
from rnnbench.perf.findings import PIPELINE_WAIT_TARGET, RUNNER_TARGET, findings
from rnnbench.perf.record import (CHANGE_WORTH_FLAGGING, Change, Measurements, atomic_write, number, read_csv,
                                  recorded_changes)

# The columns of each section's table: (metric, column label); a metric no row of the section has is left out.
COLUMNS = {
    "task": [("load_s", "load s"), ("build_s", "build s"), ("params", "params"), ("first_step_s", "first step s"),
             ("train_samples_per_s", "samples/s"), ("computed_timesteps_per_s", "timesteps/s"),
             ("real_timesteps_per_s", "real timesteps/s"), ("median_step_ms", "median step ms"),
             ("latency_ms_per_batch", "latency ms/batch"), ("latency_batch_size", "latency batch"),
             ("latency_ms_per_sample", "latency ms/sample")],
    "overhead": [("epoch_s", "epoch s"), ("cpu_epoch_s", "CPU s per epoch"), ("train_samples_per_s", "samples/s"),
                 ("best_round_ratio", "fastest rounds"), ("throughput_ratio", "ratio"), ("ratio_min", "lowest round"),
                 ("ratio_max", "highest round"), ("per_epoch_ms", "ms per epoch")],
    "pipeline": [("wait_fraction", "waiting"), ("wait_p99_ms", "wait p99 ms"), ("wait_batches", "batches timed"),
                 ("train_samples_per_s", "samples/s"), ("median_step_ms", "median step ms"),
                 ("batches_per_s", "batches/s"), ("headroom", "headroom"), ("best_round_ratio", "fastest rounds"),
                 ("throughput_ratio", "ratio"), ("ratio_min", "lowest round"), ("ratio_max", "highest round")],
    "padding": [("padded_fraction", "padded"), ("train_samples_per_s", "samples/s"),
                ("real_timesteps_per_s", "real timesteps/s"), ("best_round_ratio", "fastest rounds"),
                ("real_timesteps_ratio", "ratio"), ("ratio_min", "lowest round"), ("ratio_max", "highest round")],
    "kernel": [("median_step_ms", "median step ms"), ("first_step_s", "first step s"), ("xla_used", "xla used")],
    "flops": [("achieved_flops", "achieved FLOP/s"), ("step_flops", "FLOP per step"),
              ("median_step_ms", "median step ms")],
    "matmul": [("peak_flops", "peak FLOP/s"), ("median_flops", "median FLOP/s")],
}
COMPARISON_COLUMNS = ["section", "item", "variant", "metric", "previous", "now", "ratio", ""]


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |",
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]


def _section_table(out: Measurements, section: str) -> list[str]:
    """One row per (item, variant), one column per metric that any row of the section has."""
    present = [(m, label) for m, label in COLUMNS[section]
               if any(r.section == section and r.metric == m for r in out.rows)]
    units = {r.metric: r.unit for r in out.rows if r.section == section}
    rows = []
    for item in out.items(section):
        for variant in out.variants(section, item):
            values = [out.get(section, item, variant, m) for m, _ in present]
            if any(v is not None for v in values):
                rows.append([item, variant, *(number(v, units.get(m, "")) for v, (m, _) in zip(values, present))])
    return _table(["item", "variant", *(label for _, label in present)], rows) if rows else []


def _comparison(changes: list[Change], baseline: Optional[str]) -> list[str]:
    if not changes:
        return [prose.sentence("no_baseline") if baseline is None else
                prose.sentence("nothing_in_common", baseline=baseline)]
    return [prose.sentence("comparison", baseline=baseline, threshold=100 * CHANGE_WORTH_FLAGGING), "",
            *_table(COMPARISON_COLUMNS,
                    ([c.row.section, c.row.item, c.row.variant, c.row.metric, number(c.previous, c.row.unit),
                      number(c.row.value, c.row.unit), number(c.ratio), c.verdict] for c in changes))]


def readme(out: Measurements, environment: dict, changes: list[Change], baseline: Optional[str]) -> str:
    def facts(named: Callable[[str], bool], with_key: bool = False) -> list[str]:
        return [f"- {key}: {value}" if with_key else f"- {value}" for key, value in out.facts.items() if named(key)]

    no_gpu = str(environment.get("cuda", "none")) == "none"
    fields = {
        "command": environment.get("command", "python -m rnnbench.perf"),
        "runner_target": RUNNER_TARGET,
        "wait_target": 100 * PIPELINE_WAIT_TARGET,
        "findings": [f"- {line}" for line in findings(out)],
        **{f"{section}_table": _section_table(out, section) for section in COLUMNS},
        "task_facts": facts(lambda key: key.endswith(" reference"), with_key=True),
        "skipped": [f"- {prose.sentence('skipped', task=task, reason=reason)}"
                    for task, reason in out.skipped.items()],
        "overhead_facts": facts(lambda key: key == "overhead setup"),
        "kernel_facts": facts(lambda key: key == "kernel setup"),
        "flops_facts": facts(lambda key: key == "flops setup"),
        "kernel_plot": prose.sentence("kernel_plot") if "kernel" in {r.section for r in out.rows} else "",
        "gpu": prose.sentence("gpu_not_measured" if no_gpu else "gpu_measured", device=environment.get("device")),
        "comparison": _comparison(changes, baseline),
        "environment_table": _table(["", ""], ([k, v] for k, v in environment.items())),
    }
    return prose.report(fields)


def write_report(out_dir: Path, out: Measurements, state: dict) -> None:
    """README.md and the plots, from the measurements and the rest of the run's record (perf.json)."""
    changes = recorded_changes(out.rows, state["previous"])
    plot_kernels(out, out_dir / "kernels.png")
    plot_tasks(out, out_dir / "tasks.png")
    text = readme(out, state["environment"], changes, state["baseline"])
    atomic_write(out_dir / "README.md", lambda p: p.write_text(text))


def render(out_dir: Path, echo: Callable[[str], None] = print) -> Measurements:
    """Redraws README.md and the plots of the run recorded in `out_dir` (perf.csv, perf.json), measuring nothing."""
    csv_path, state_path = out_dir / "perf.csv", out_dir / "perf.json"
    for path in (csv_path, state_path):
        if not path.is_file():
            raise UserError(f"{path} not found: --render redraws an earlier run's README and plots; run "
                            "`python -m rnnbench.perf` first")
    out = Measurements()
    out.rows = read_csv(csv_path)
    if not out.rows:
        raise UserError(f"{csv_path} holds no figures; run `python -m rnnbench.perf` again")
    try:
        state = json.loads(state_path.read_text())
        out.facts, out.skipped = dict(state["facts"]), dict(state["skipped"])
        write_report(out_dir, out, state)
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise UserError(f"{state_path} is not a perf record ({type(error).__name__}: {error}); run "
                        "`python -m rnnbench.perf` again") from None
    echo(f"perf: redrew {out_dir}/README.md, kernels.png, tasks.png from perf.csv and perf.json")
    return out
