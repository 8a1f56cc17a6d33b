"""Section `padding`, for tasks with padded (masked) input: the share of computed timesteps that are padding with
the task's length bucketing and without it (each batch padded to its longest example), and the speed of both."""
from __future__ import annotations

from rnnbench.perf.counting import Pass, read_pass, unbucketed_batches
from rnnbench.perf.record import Measurements
from rnnbench.perf.rounds import TimedTask
from rnnbench.perf.timing import add_paired_ratio


def _unbucketed(timed: TimedTask, examples: list):
    return unbucketed_batches(examples, timed.spec.inputs, timed.config["train"]["batch_size"],
                              timed.config["task_options"].get("seed", 0))


def unbucketed_variant(timed: TimedTask) -> tuple[object, Pass]:
    """The timed epoch's examples without bucketing, a variant of the rounds: (endless batches, one epoch's Pass)."""
    inputs = timed.spec.inputs
    if timed.sliced is timed.spec.train:
        examples = timed.whole.examples
    else:
        examples = read_pass(timed.sliced, inputs, True).examples
    unbucketed = _unbucketed(timed, examples)
    return unbucketed.repeat(), read_pass(unbucketed, inputs)


def add_figures(timed: TimedTask, out: Measurements) -> None:
    task, spec = timed.task, timed.spec
    flat = read_pass(_unbucketed(timed, timed.whole.examples), spec.inputs)
    out.add("padding", task, "bucketed (task pipeline)", "padded_fraction", timed.whole.padded_fraction, "fraction")
    out.add("padding", task, "unbucketed", "padded_fraction", flat.padded_fraction, "fraction")
    timed.add_throughput(out, "padding", "bucketed (task pipeline)", "cached")
    timed.add_throughput(out, "padding", "unbucketed", "unbucketed")
    # Real timesteps per second, bucketed over unbucketed: (real_b / t_b) / (real_u / t_u).
    scale = timed.counts.real_steps / timed.variants["unbucketed"][1].real_steps
    add_paired_ratio("padding", task, "bucketed/unbucketed", "real_timesteps_ratio",
                     [scale * t for t in timed.rounds["unbucketed"]], timed.rounds["cached"], out)
    for key, value in spec.notes.items():
        if key.startswith("padded_fraction") and isinstance(value, (int, float)):
            out.add("padding", task, f"loader notes: {key}", "padded_fraction", value, "fraction")
