"""Section `task`: each task's reference model trained as the runner builds and compiles it, on a slice of the
task: load and build time, time to the first finished step, throughput, median step time, inference latency.

The same alternated rounds also give the `pipeline`, `padding` and reference `flops` figures of the task.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

from rnnbench import models as zoo
from rnnbench import runner
from rnnbench.measure import measure_latency
from rnnbench.perf import flops, padding, pipeline
from rnnbench.perf.counting import read_pass
from rnnbench.perf.record import Measurements
from rnnbench.perf.reference import load_spec, portable_paths, reference_config
from rnnbench.perf.rounds import TimedTask, time_rounds
from rnnbench.perf.sizes import Sizes
from rnnbench.perf.timing import timed_fit
from rnnbench.streaming import endless


def measure_task(task: str, sizes: Sizes, out: Measurements, echo: Callable[[str], None],
                 task_options: Optional[dict] = None) -> None:
    """Sections task, pipeline and padding for one task.

    A timed epoch is the whole training split of the slice when it has at most `steps_per_epoch` batches, otherwise
    its first `steps_per_epoch` batches. Whole epochs matter for bucketed pipelines: their first batches come from
    whichever bucket fills first, usually the longest, so a partial epoch would misstate padding and throughput.
    """
    config = reference_config(task, sizes, task_options)
    start = time.perf_counter()
    spec = load_spec(config)
    out.add("task", task, "lstm", "load_s", time.perf_counter() - start, "s")
    start = time.perf_counter()
    model = runner.build_model(spec, "lstm", config)
    out.add("task", task, "lstm", "build_s", time.perf_counter() - start, "s")
    out.add("task", task, "lstm", "params", zoo.count_trainable(model), "")

    whole = read_pass(spec.train, spec.inputs, keep_examples=spec.inputs.masked)
    sliced = spec.train if whole.batches <= sizes.steps_per_epoch else spec.train.take(sizes.steps_per_epoch)
    counts = whole if sliced is spec.train else read_pass(sliced, spec.inputs)
    alone_seconds = pipeline.seconds_alone(sliced)
    cached = sliced.cache()
    read_pass(cached, spec.inputs)  # fills the cache
    first_step, _ = timed_fit(model, sliced)
    out.add("task", task, "lstm", "first_step_s", first_step, "s")
    out.facts[f"{task} reference"] = portable_paths(
        f"lstm, {zoo.count_trainable(model):,} parameters, batch {config['train']['batch_size']}, "
        f"{counts.batches} batches per timed epoch ({'the whole' if sliced is spec.train else 'the start of the'} "
        f"training split of {whole.samples} samples), jit_compile {model.jit_compile}; model options "
        f"{config['model_options']}; task options {spec.options or config['task_options']}")

    # (dataset, its pass): the pipeline as the runner streams it (streaming.endless), against the cached batches.
    variants = {"pipeline": (endless(sliced), counts), "cached": (cached.repeat(), counts)}
    timed = TimedTask(task, config, spec, model, whole, sliced, counts, cached, alone_seconds, variants)
    if spec.inputs.masked:
        variants["unbucketed"] = padding.unbucketed_variant(timed)
    time_rounds(timed, sizes)
    out.facts[f"{task} reference"] += (f"; timed: {sizes.rounds} rounds of {timed.epochs_per_round} epoch(s) per "
                                       "variant after an untimed one, median epoch; ratios are medians of per-round "
                                       "ratios")
    echo(f"perf: {task}: first step after {first_step:.1f} s; {sizes.rounds} rounds of {timed.epochs_per_round} "
         f"epoch(s) of {counts.batches} batches per variant")

    timed.add_throughput(out, "task", "lstm", "pipeline")
    flops.add_reference(timed, out)
    for key, value in measure_latency(model, spec, repeats=sizes.latency_repeats).items():
        out.add("task", task, "lstm", key, value, "ms" if key.startswith("latency_ms") else "")
    pipeline.add_figures(timed, sizes, out)
    if spec.inputs.masked:
        padding.add_figures(timed, out)
