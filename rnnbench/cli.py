"""The `rnnbench` command: bench, list, report, compare, generate, predict, ui.

User errors (unknown names, bad options, missing data) print one line and exit with status 2; an interrupted bench
exits with 130 after marking its current run KILLED and writing the report for what finished.
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

# Where a user's reports go unless asked otherwise: results/ holds the committed reference reports, which a user's
# own runs (other options, own data, interrupted grids) must not replace.
USER_REPORTS = "reports"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnbench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    bench = commands.add_parser("bench", help="run a benchmark grid (models x seeds) into MLflow, then report")
    bench.add_argument("--task", help="task name, or an experiment name from experiments/")
    bench.add_argument("--experiment", help="experiment file stem in experiments/ (default: the task's own)")
    bench.add_argument("--models", help="comma-separated model names (default: the experiment's)")
    bench.add_argument("--seeds", help="comma-separated seeds (default: the experiment's)")
    bench.add_argument("--epochs", type=int, help="training epochs per run")
    bench.add_argument("--set", dest="sets", action="append", nargs="+", default=[], metavar="KEY=VALUE",
                       help="override options: task.<name>, model.<name>, train.<name>; several pairs may follow "
                            "one --set, and --set may repeat")
    bench.add_argument("--smoke", action="store_true", help="the experiment's small, quick variant")
    bench.add_argument("--sweep", action="store_true",
                       help="run the experiment's SWEEP (e.g. every task.length of experiments/adding.py): one "
                            "ordinary grid per value, each with its own configuration hash, in the same MLflow "
                            "experiment and resumable like any grid; then the sweep's report in <folder>/<experiment>/ "
                            "and each value's in a subfolder (make bench TASK=adding SWEEP=1)")
    bench.add_argument("--values", help="with --sweep: run only these comma-separated values of the SWEEP (e.g. "
                                        "--values 50,100); the sweep's report still covers every value, taking those "
                                        "not in the store from their committed reports beside it")
    bench.add_argument("--results-dir", help=f"where the report goes (default: {USER_REPORTS}/, or results/ with "
                                              "--reference)")
    bench.add_argument("--reference", action="store_true",
                       help="regenerate the committed reference report in results/: only for an experiment exactly "
                            "as its file states it (no --set/--models/--seeds/--epochs/--smoke), and only when every "
                            "run finished")
    bench.add_argument("--resume", action="store_true",
                       help="continue interrupted runs from their last finished epoch (finished runs are always skipped)")
    bench.add_argument("--executor", choices=("serial", "ray"), default="serial",
                       help="serial: one run after another in this process (default); ray: each run a Ray task, on "
                            "a local Ray or the cluster at RAY_ADDRESS")
    bench.add_argument("--workers", type=int, help="--executor ray: runs at once (default 2)")

    listing = commands.add_parser("list", help="list tasks, models and experiments, or one task's options")
    listing.add_argument("--task", help="print this task's options (name, type, default, help)")

    report = commands.add_parser("report", help=f"write {USER_REPORTS}/<experiment>/ from the MLflow store (for an "
                                                 "experiment with a SWEEP: the sweep's report, each value's below it)")
    report.add_argument("--task", help="task name (its own experiment), or an experiment name from experiments/")
    report.add_argument("--experiment", help="experiment file stem in experiments/ (default: the task's own)")
    report.add_argument("--config-hash", help="report this configuration (default: the latest bench of the experiment)")
    report.add_argument("--results-dir", help=f"default: {USER_REPORTS}/, or results/ with --reference")
    report.add_argument("--reference", action="store_true", help="write into results/, the committed reports")

    generate = commands.add_parser("generate", help="sample from a finished run of a task that can generate")
    generate.add_argument("--run-id", required=True)
    generate.add_argument("--prompt", default="\n")
    generate.add_argument("--length", type=int, default=500)
    generate.add_argument("--temperature", type=float, default=0.8)
    generate.add_argument("--seed", type=int, default=0)

    predict = commands.add_parser(
        "predict", help="apply a finished run's model to new raw input",
        description="Apply a finished run's model to new raw input, with the vocabulary and feature settings logged "
                    "with the run. INPUT per task: imdb, review texts ('-' reads one review per line from stdin); "
                    "char_lm, prompts; speech, wav files (.mfc cepstra for an4 runs); stock, price CSV files; sine, "
                    "a file or comma list of the last input_len values.")
    predict.add_argument("--run-id", required=True)
    predict.add_argument("inputs", nargs="+", metavar="INPUT")

    compare = commands.add_parser("compare", help="two experiments' reports side by side (an experiment against "
                                                   "its control): differences per model and metric, with intervals")
    compare.add_argument("--task", required=True, help="the experiment (its report folder's name)")
    compare.add_argument("--against", help="the experiment compared with (default: the CONTROL its file declares)")
    compare.add_argument("--metrics", help="comma-separated runs.csv columns (default: every test_ and best_val_ "
                                           "metric both hold)")
    compare.add_argument("--results-dir", help=f"where both reports are (default: {USER_REPORTS}/, or results/ with "
                                               "--reference)")
    compare.add_argument("--reference", action="store_true", help="compare the committed reports in results/")

    ui = commands.add_parser("ui", help="start the MLflow UI on the tracking store")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--host", default="127.0.0.1")
    return parser


def _task_and_experiment(args) -> tuple:
    """(task, experiment) from --task/--experiment: `--task speech_digits` (`make bench TASK=speech_digits`) names an
    experiment file, not a task."""
    from rnnbench import config as configuration
    from rnnbench import registry
    from rnnbench.errors import UserError

    task, experiment = args.task, args.experiment
    if task and not experiment and task not in registry.list_tasks() and task in configuration.list_experiments():
        task, experiment = None, task
    if not task and not experiment:
        raise UserError("name a task (--task) or an experiment (--experiment); see `rnnbench list`")
    return task, experiment


def _report_folder(args) -> str:
    return args.results_dir or ("results" if args.reference else USER_REPORTS)


def _bench(args) -> int:
    from rnnbench import config as configuration
    from rnnbench.errors import UserError

    task, experiment = _task_and_experiment(args)
    if args.sweep:
        return _bench_sweep(args, task, experiment)
    if args.values:
        raise UserError("--values picks values of an experiment's SWEEP; add --sweep, or set one value with --set")
    resolved = configuration.resolve(task=task, experiment=experiment, smoke=args.smoke, models=args.models,
                                     seeds=args.seeds, epochs=args.epochs,
                                     sets=[pair for group in args.sets for pair in group])
    if args.reference and (resolved["overridden"] or resolved["smoke"]
                           or resolved["experiment"] not in configuration.list_experiments()):
        raise UserError("--reference regenerates the committed report of an experiment exactly as "
                        f"experiments/{resolved['experiment']}.py states it; drop --set/--models/--seeds/--epochs/"
                        f"--smoke, or drop --reference to write your report to {USER_REPORTS}/")
    from rnnbench.executors import make_executor

    executor = make_executor(args.executor, args.workers)  # a bad --workers fails before the task loads
    from rnnbench.runner import bench

    outcome = bench(resolved, results_dir=_report_folder(args), resume=args.resume,
                    incomplete_dir=USER_REPORTS if args.reference and not args.results_dir else None,
                    executor=executor)
    print(f"rnnbench: {outcome['finished']} runs finished, {outcome['skipped']} skipped (already in the store), "
          f"{outcome['failed']} failed; report: {outcome['report_dir']}")
    for line in outcome["failed_runs"]:
        print(f"rnnbench: failed: {line}")
    return 1 if outcome["failed"] else 0


def _bench_sweep(args, task, experiment) -> int:
    """`bench --sweep`: one grid per value of the experiment's SWEEP, then the sweep's report (rnnbench.memory_report),
    which also rewrites each value's own report into a subfolder of it."""
    import tempfile

    from rnnbench import config as configuration
    from rnnbench import memory_report
    from rnnbench.errors import UserError
    from rnnbench.executors import make_executor
    from rnnbench.runner import bench

    configs = configuration.resolve_sweep(task=task, experiment=experiment, smoke=args.smoke, models=args.models,
                                          seeds=args.seeds, epochs=args.epochs,
                                          sets=[pair for group in args.sets for pair in group])
    first = configs[0]
    chosen = configuration.sweep_values(configs, args.values) if args.values else configs
    if args.reference and (first["overridden"] or first["smoke"]):
        raise UserError("--reference regenerates the committed reports of an experiment exactly as "
                        f"experiments/{first['experiment']}.py states it; drop --set/--models/--seeds/--epochs/"
                        f"--smoke, or drop --reference to write your reports to {USER_REPORTS}/")
    executor = make_executor(args.executor, args.workers)
    totals = {"finished": 0, "skipped": 0, "failed": 0, "failed_runs": []}
    complete = False
    try:
        for number, config in enumerate(chosen, start=1):
            (key, value), = config["sweep"].items()
            print(f"rnnbench: sweep {key} = {value} ({number} of {len(chosen)})", flush=True)
            with tempfile.TemporaryDirectory(prefix="rnnbench-sweep-") as scratch:  # the sweep report rewrites it
                outcome = bench(config, results_dir=scratch, resume=args.resume, executor=executor,
                                echo=_unless_scratch)
            for name in ("finished", "skipped", "failed", "failed_runs"):
                totals[name] += outcome[name]
        complete = not totals["failed"]
    finally:  # also after Ctrl-C: the report of what finished, where an incomplete sweep's belongs
        folder = _report_folder(args) if complete or not args.reference or args.results_dir else USER_REPORTS
        out_dir = Path(folder) / (first["experiment"] + ("_smoke" if first["smoke"] else ""))
        try:
            memory_report.write_sweep_report(first["task"], configs, out_dir)
        except Exception as error:  # a broken report must not hide the training outcome
            print(f"rnnbench: the sweep report could not be written: {error}")
    print(f"rnnbench: sweep of {len(chosen)} grids: {totals['finished']} runs finished, {totals['skipped']} skipped "
          f"(already in the store), {totals['failed']} failed; report: {out_dir}")
    for line in totals["failed_runs"]:
        print(f"rnnbench: failed: {line}")
    return 1 if totals["failed"] else 0


def _unless_scratch(line: str) -> None:
    """Prints a bench's lines but the one naming its report's scratch folder, which the sweep's report replaces."""
    if not line.startswith("rnnbench: report written to"):
        print(line, flush=True)


def _list(args) -> int:
    from rnnbench import config as configuration
    from rnnbench import options, registry

    if args.task:
        entry = registry.get_task_entry(args.task)
        print(f"options of task {args.task} (--set task.<name>=VALUE; batch size is train.batch_size):")
        for line in options.describe(entry.options) if entry.options else ["(declares none)"]:
            print("  " + line)
        return 0
    # Read from the sources, so listing does not wait for TensorFlow to import (tests check both agree).
    print("tasks:       " + ", ".join(registry.declared_names("task")))
    print("models:      " + ", ".join(registry.declared_names("model")))
    print("experiments:")
    for name, line in configuration.list_experiments().items():
        print(f"  {name:<16} {line}")
    print("A task's options: rnnbench list --task NAME")
    return 0


def _report(args) -> int:
    from rnnbench import config as configuration
    from rnnbench import registry
    from rnnbench.errors import UserError
    from rnnbench.report import write_report

    task, experiment = _task_and_experiment(args)
    if experiment:
        of = configuration.load_experiment(experiment)[0].get("task")
        if task and task != of:
            raise UserError(f"experiment {experiment!r} is for task {of!r}, not {task!r}")
        task = of
    registry.get_task(task)  # an unknown name fails with the known ones, before any experiment is made for it
    if not args.config_hash and configuration.load_sweep(experiment or task):
        from rnnbench import memory_report

        memory_report.write_sweep_report(task, configuration.resolve_sweep(task=None, experiment=experiment or task),
                                         Path(_report_folder(args)) / (experiment or task))
        return 0
    write_report(task, experiment=experiment or task, config_hash=args.config_hash,
                 out_dir=Path(_report_folder(args)) / (experiment or task))
    return 0


def _compare(args) -> int:
    from rnnbench import config as configuration
    from rnnbench.compare import write_comparison
    from rnnbench.errors import UserError

    if not args.against:
        args.against = configuration.controls().get(args.task)
        if not args.against:
            raise UserError(f"experiment {args.task!r} declares no CONTROL; name the other one with --against")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    out = write_comparison(Path(_report_folder(args)), args.task, args.against, metrics)
    print(f"rnnbench: comparison written to {out}")
    return 0


def _run_hook(run_id: str, hook: str, ability: str):
    """The `hook` of the task of run `run_id`; a task without it is refused, naming the tasks that have it."""
    from rnnbench import registry, tracking
    from rnnbench.errors import UserError

    task = tracking.run_tag(run_id, "task")
    found = getattr(registry.get_task_entry(task), hook)
    if found is None:
        able = [name for name in registry.list_tasks() if getattr(registry.get_task_entry(name), hook)]
        raise UserError(f"run {run_id} is of task {task!r}, which cannot {ability}; tasks that can: "
                        + (", ".join(able) or "(none)"))
    return found


def _generate(args) -> int:
    generate = _run_hook(args.run_id, "generate", "generate")
    print(generate(run_id=args.run_id, prompt=args.prompt, length=args.length, temperature=args.temperature,
                   seed=args.seed))
    return 0


def _predict(args) -> int:
    predict = _run_hook(args.run_id, "predict", "predict")
    for line in predict(run_id=args.run_id, inputs=list(args.inputs)):
        print(line)
    return 0


def _ui(args) -> int:
    from rnnbench.tracking import tracking_uri

    uri = tracking_uri()
    print(f"rnnbench: MLflow UI for {uri} at http://{args.host}:{args.port} (Ctrl-C to stop)", flush=True)
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow) if mlflow.exists() else "mlflow", "ui", "--backend-store-uri", uri,
               "--host", args.host, "--port", str(args.port)]
    return subprocess.call(command)


def _terminate_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    from rnnbench.errors import UserError

    args = _parser().parse_args(argv)
    if argv is None:  # the console command, not a caller passing arguments (tests, notebooks)
        from rnnbench.native_log import filter_native_stderr

        filter_native_stderr()
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)  # SIGTERM gets the same clean stop as Ctrl-C
    handlers = {"bench": _bench, "list": _list, "report": _report, "generate": _generate, "predict": _predict,
                "compare": _compare, "ui": _ui}
    try:
        return handlers[args.command](args)
    except UserError as error:
        print(f"rnnbench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
