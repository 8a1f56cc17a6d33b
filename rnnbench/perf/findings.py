"""The conclusions the figures support, judged against perf's targets and the runner's XLA table; their words are
sentences.md's."""
from __future__ import annotations

import math
import statistics

from rnnbench import compute
from rnnbench.perf.prose import sentence
from rnnbench.perf.record import Measurements
from rnnbench.perf.sizes import KERNEL_VARIANTS

RUNNER_TARGET = 0.97  # the target for the runner's throughput relative to plain Keras
# "The pipeline is never the bottleneck", measured directly: the share of training time the model spends waiting in
# `next()` for its next batch. At most 5% waiting means at least 0.95 of the throughput of a model never kept waiting.
PIPELINE_WAIT_TARGET = 0.05


def findings(out: Measurements) -> list[str]:
    """The conclusions the figures support, in words."""
    lines = _overhead(out) + _builds(out) + _pipeline(out) + _padding(out) + _kernels(out)
    peak = max((r.value for r in out.rows if r.section == "matmul" and r.metric == "peak_flops"), default=None)
    if peak:
        for r in out.rows:
            if r.section == "flops" and r.metric == "achieved_flops":
                lines.append(sentence("physical_limit", item=r.item, variant=r.variant, achieved=r.value / 1e9,
                                      share=100 * r.value / peak, peak=peak / 1e9))
    return lines


def _meets(met: bool) -> str:
    return sentence("target_met" if met else "target_missed")


def _overhead(out: Measurements) -> list[str]:
    def get(variant: str, metric: str):
        return out.get("overhead", "sine", variant, metric)

    ratio = get("runner/plain", "throughput_ratio")
    if ratio is None:
        return []
    save, epoch = get("checkpoint save", "per_epoch_ms"), get("plain", "epoch_s")
    low, high = get("runner/plain", "ratio_min"), get("runner/plain", "ratio_max")
    best = get("runner/plain", "best_round_ratio")
    best = ratio if best is None else best
    spread = sentence("overhead_spread", low=low, high=high) if low is not None and high is not None else ""
    cpu = get("runner/plain (CPU time)", "throughput_ratio")
    if cpu is None:  # a perf.csv from before CPU time was measured: judged on the fastest rounds
        verdict = sentence("overhead_wall_clock", best=best, meets=_meets(best >= RUNNER_TARGET), target=RUNNER_TARGET,
                           ratio=ratio, spread=spread)
    else:
        verdict = sentence("overhead_cpu_time", cpu=cpu, cpu_low=get("runner/plain (CPU time)", "ratio_min"),
                           cpu_high=get("runner/plain (CPU time)", "ratio_max"), meets=_meets(cpu >= RUNNER_TARGET),
                           target=RUNNER_TARGET, best=best, ratio=ratio, spread=spread)
    return [sentence("overhead", verdict=verdict, save=save, share=100 * save / 1000 / epoch, epoch=epoch)]


def _builds(out: Measurements) -> list[str]:
    builds = {t: out.get("task", t, "lstm", "build_s") for t in out.items("task")}
    times = [sentence("build_time", seconds=b, task=t) for t, b in builds.items() if b is not None]
    return [sentence("builds", times=", ".join(times))] if times else []


def _pipeline(out: Measurements) -> list[str]:
    lines = []
    for task in out.items("pipeline"):
        def get(variant: str, metric: str):
            return out.get("pipeline", task, variant, metric)

        ratio, headroom = get("pipeline/cached", "throughput_ratio"), get("pipeline_alone", "headroom")
        if ratio is None or headroom is None:
            continue
        low, high = get("pipeline/cached", "ratio_min"), get("pipeline/cached", "ratio_max")
        best = get("pipeline/cached", "best_round_ratio")
        if best is not None:
            throughput = sentence("pipeline_throughput_fastest", best=best, ratio=ratio, low=low, high=high,
                                  headroom=headroom)
        elif low is not None:  # a perf.csv from before fastest rounds were measured
            throughput = sentence("pipeline_throughput_rounds", ratio=ratio, low=low, high=high, headroom=headroom)
        else:
            throughput = sentence("pipeline_throughput", ratio=ratio, headroom=headroom)
        wait = get("pipeline", "wait_fraction")
        if wait is None:  # a perf.csv from before the wait was measured
            lines.append(sentence("pipeline_before_wait", task=task, throughput=throughput))
            continue
        within = wait <= PIPELINE_WAIT_TARGET
        lines.append(sentence("pipeline", task=task, wait=100 * wait, p99=get("pipeline", "wait_p99_ms"),
                              floor=100 * get("cached", "wait_fraction"),
                              within=sentence("wait_within" if within else "wait_over"),
                              target=100 * PIPELINE_WAIT_TARGET,
                              verdict=sentence("pipeline_not_bottleneck" if within else "pipeline_bottleneck"),
                              throughput=throughput))
    return lines


def _padding(out: Measurements) -> list[str]:
    lines = []
    for task in out.items("padding"):
        bucketed = out.get("padding", task, "bucketed (task pipeline)", "padded_fraction")
        flat = out.get("padding", task, "unbucketed", "padded_fraction")
        speed = out.get("padding", task, "bucketed/unbucketed", "real_timesteps_ratio")
        if bucketed is not None and flat is not None and speed is not None:
            lines.append(sentence("padding", task=task, bucketed=100 * bucketed, flat=100 * flat, speed=speed))
    return lines


def _kernels(out: Measurements) -> list[str]:
    lines, xla_fastest = [], []
    for cell in out.items("kernel"):
        for mask in ("unmasked", "masked"):
            timings = {v: out.get("kernel", cell, f"{v}, {mask}", "median_step_ms") for v in KERNEL_VARIANTS}
            timings = {v: t for v, t in timings.items() if t is not None}
            if len(timings) < 2:
                continue
            fastest = min(timings, key=timings.get)
            xla_fastest.append(fastest == "xla")
            lines.append(sentence("kernel", cell=cell, mask=mask, fastest=fastest, fastest_ms=timings[fastest],
                                  xla=timings.get("no_xla", math.nan) / timings.get("xla", math.nan),
                                  deterministic=timings.get("no_xla_deterministic", math.nan),
                                  no_xla=timings.get("no_xla", math.nan)))
    for cell in out.items("kernel"):
        masked = out.get("kernel", cell, "no_xla, masked", "median_step_ms")
        plain = out.get("kernel", cell, "no_xla, unmasked", "median_step_ms")
        if masked and plain:
            lines.append(sentence("masking", cell=cell, ratio=masked / plain))
    if xla_fastest:
        lines.append(_xla_policy(out))
    return lines


def _xla_policy(out: Measurements) -> str:
    """Whether this run's kernel figures agree with the XLA table the runner reads, and what XLA compilation costs."""
    compile_costs = []  # first step with XLA minus first step without, same cell and mask
    for r in out.rows:
        if r.section == "kernel" and r.metric == "first_step_s" and r.variant.startswith("xla,"):
            without = out.get("kernel", r.item, "no_" + r.variant, "first_step_s")
            if without is not None:
                compile_costs.append(r.value - without)
    disagreements = []  # cells and masks where this run's evidence contradicts the runner's jit policy
    table = compute.cpu_xla_speedup()
    for cell in out.items("kernel"):
        for masked in (False, True):
            mask = "masked" if masked else "unmasked"
            with_xla = out.get("kernel", cell, f"xla, {mask}", "median_step_ms")
            without = out.get("kernel", cell, f"no_xla, {mask}", "median_step_ms")
            policy = table.get((cell, masked))
            if with_xla and without and policy is not None and (without / with_xla > 1.0) != (policy > 1.0):
                disagreements.append(sentence("xla_disagreement", cell=cell, mask=mask, measured=without / with_xla,
                                              table=policy))
    agreement = (sentence("xla_disagrees", disagreements="; ".join(disagreements)) if disagreements else
                 sentence("xla_agrees"))
    parts = [sentence("xla_policy", agreement=agreement)]
    if compile_costs:
        parts.append(sentence("xla_compile", seconds=statistics.median(compile_costs)))
    return " ".join(parts)
