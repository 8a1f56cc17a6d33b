"""`python -m rnnbench.perf`: its flags, and one run: every section in turn, then the record, the report, the
comparison with the previous run and, on a full run, the XLA table."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import tensorflow as tf

import rnnbench.perf
from rnnbench import compute, registry
from rnnbench import config as configuration
from rnnbench.environment import describe as describe_environment
from rnnbench.errors import UserError
from rnnbench.perf import xla_table
from rnnbench.perf.findings import findings
from rnnbench.perf.flops import measure_flops, measure_matmul
from rnnbench.perf.kernels import measure_kernels
from rnnbench.perf.overhead import measure_runner_overhead
from rnnbench.perf.record import SIZES_KEY, Measurements, atomic_write, compare, print_comparison, read_csv, write_csv
from rnnbench.perf.reference import checked_task_options, forget_loaded_tasks
from rnnbench.perf.report import render, write_report
from rnnbench.perf.sizes import FULL, QUICK, Sizes
from rnnbench.perf.throughput import measure_task


def run(out_dir: Path, sizes: Sizes, tasks: Sequence[str], baseline: Optional[Path], command: str,
        echo: Callable[[str], None] = print, task_options: Optional[dict] = None) -> Measurements:
    """Measures everything, writes perf.csv, perf.json, README.md and the plots into `out_dir`, prints the comparison;
    a full run then writes the XLA table from its kernel rows (the README judged them against the table it ran with).

    `task_options`: {task: {option: value}} on top of each task's reference configuration (from --set).
    """
    previous_path = baseline if baseline is not None else out_dir / "perf.csv"
    previous = read_csv(previous_path) if previous_path.is_file() else []
    out = Measurements()
    out.add(*SIZES_KEY, float(sizes.quick))
    forget_loaded_tasks()
    started = time.perf_counter()
    load_start = os.getloadavg()
    environment = describe_environment()
    environment["command"] = command
    echo(f"perf: {'quick' if sizes.quick else 'full'} run on {environment['device']}, load average "
         f"{load_start[0]:.2f}; writing {out_dir}/")
    measure_matmul(sizes, out, "start")
    for task in tasks:
        section_start = time.perf_counter()
        try:
            measure_task(task, sizes, out, echo, (task_options or {}).get(task))
        except UserError as error:  # absent data or experiment: the README says which and why
            out.skipped[task] = str(error).splitlines()[0][:300]
            echo(f"perf: {task} skipped: {out.skipped[task]}")
        echo(f"perf: {task} took {time.perf_counter() - section_start:.0f} s")
    for name, measure in (("runner overhead", measure_runner_overhead), ("kernels", measure_kernels),
                          ("flops", measure_flops)):
        section_start = time.perf_counter()
        measure(sizes, out, echo)
        echo(f"perf: {name} took {time.perf_counter() - section_start:.0f} s")
    measure_matmul(sizes, out, "end")
    load_end = os.getloadavg()
    environment.update({
        "load average (1/5/15 min) at start": " / ".join(f"{v:.2f}" for v in load_start),
        "load average (1/5/15 min) at end": " / ".join(f"{v:.2f}" for v in load_end),
        "tf intra/inter-op threads (0: one per core)": f"{tf.config.threading.get_intra_op_parallelism_threads()} / "
                                                        f"{tf.config.threading.get_inter_op_parallelism_threads()}",
        "perf duration (s)": f"{time.perf_counter() - started:.0f}",
        "sizes": "quick" if sizes.quick else "full",
    })
    changes = compare(previous, out.rows)
    state = {"environment": environment, "facts": out.facts, "skipped": out.skipped,
             "baseline": str(previous_path) if previous else None,
             "previous": [[*c.row.key, c.previous] for c in changes]}
    write_csv(out.rows, out_dir / "perf.csv")
    atomic_write(out_dir / "perf.json", lambda p: p.write_text(json.dumps(state, indent=2) + "\n"))
    write_report(out_dir, out, state)
    if previous:
        print_comparison(changes, previous_path, echo)
    for line in findings(out):
        echo(f"perf: {line}")
    if not sizes.quick:
        written = xla_table.write_from_run(out.rows, environment, out_dir / "perf.csv")
        echo(f"perf: wrote the XLA table {compute.XLA_TABLE}: {written['speedup']}" if written else
             "perf: XLA table left as it is: this run had a GPU, the table holds CPU speed-ups")
    echo(f"perf: wrote {out_dir}/perf.csv, perf.json, README.md, kernels.png, tasks.png in "
         f"{time.perf_counter() - started:.0f} s")
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnnbench.perf",
                                     description=rnnbench.perf.__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None,
                        help="output folder (default results/perf, with --quick results/perf_quick)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, sine only: checks every measurement runs")
    parser.add_argument("--tasks", default=None,
                        help="comma-separated tasks (default: every registered task; --quick: sine)")
    parser.add_argument("--baseline", default=None,
                        help="perf.csv to compare with (default: the perf.csv already in --out)")
    parser.add_argument("--set", action="append", default=[], metavar="TASK.OPTION=VALUE",
                        help="a task option on top of the experiment's, e.g. --set speech.data_dir=PATH (repeatable)")
    parser.add_argument("--render", action="store_true",
                        help="measure nothing: redraw README.md and the plots from perf.csv and perf.json in --out")
    parser.add_argument("--xla-table-from", default=None, metavar="CSV",
                        help="measure nothing: rewrite the runner's XLA table (rnnbench/xla_speedup.json) from the "
                             "kernel rows of this perf.csv")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else (
        ["sine"] if args.quick else sorted(registry.list_tasks(), key=lambda t: (t != "sine", t)))
    try:
        if args.xla_table_from:
            written = xla_table.write_from_csv(Path(args.xla_table_from))
            print(f"perf: wrote {compute.XLA_TABLE} from {args.xla_table_from}: {written['speedup']}")
            return 0
        for task in tasks:
            registry.get_task(task)
        baseline = Path(args.baseline) if args.baseline else None
        if baseline is not None and not baseline.is_file():
            raise UserError(f"--baseline {baseline}: no such file")
        task_options: dict[str, dict] = {}
        for key, value in configuration.parse_sets(args.set).items():
            task, _, option = key.partition(".")
            if task not in tasks or not option:
                raise UserError(f"--set {key}: expected TASK.OPTION=VALUE for one of the measured tasks {tasks}")
            task_options.setdefault(task, {})[option] = value
        for task, options in task_options.items():
            checked_task_options(task, options)  # a typo fails now, not as a skipped task minutes later
        command = " ".join(["python -m rnnbench.perf", *(argv if argv is not None else sys.argv[1:])])
        out_dir = Path(args.out or ("results/perf_quick" if args.quick else "results/perf"))
        if args.render:
            render(out_dir)
        else:
            run(out_dir, sizes, tasks, baseline, command, task_options=task_options)
    except UserError as error:
        print(f"rnnbench perf: {error}", file=sys.stderr)
        return 2
    return 0
