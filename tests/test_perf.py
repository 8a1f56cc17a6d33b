"""The performance tool: a --quick run writes every section, its README and plots, and compares with the last run;
the counting helpers behind its figures (real timesteps, padding, recurrent FLOPs, comparisons) on known inputs."""
import csv
import json
import math

import numpy as np
import pytest

from rnnbench.models import lstm
from rnnbench.perf import cli, counting, kernels, pipeline, record, sizes, timing
from rnnbench.spec import InputSpec


def test_quick_run_measures_every_section_and_compares_with_the_previous_run(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("RNNBENCH_DATA_DIR", raising=False)  # so stock has no data and must be skipped, with why
    out = tmp_path / "perf"
    out.mkdir()
    previous = [record.Row(*record.SIZES_KEY, 1.0), record.Row("task", "sine", "lstm", "params", 196.0, ""),
                record.Row("task", "sine", "lstm", "median_step_ms", 1e9, "ms")]
    record.write_csv(previous, out / "perf.csv")

    assert cli.main(["--quick", "--out", str(out), "--tasks", "sine,stock"]) == 0

    printed = capsys.readouterr().out
    assert "perf: stock skipped:" in printed and "RNNBENCH_DATA_DIR" in printed
    # The previous run had half the parameters and absurdly slow steps: ratio 2 and a marked improvement.
    assert "compared with" in printed
    assert any("params" in line and "x2" in line for line in printed.splitlines())
    assert any("median_step_ms" in line and "better" in line for line in printed.splitlines())

    with (out / "perf.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == record.CSV_COLUMNS
    assert all(math.isfinite(float(r["value"])) for r in rows)
    sections = {r["section"] for r in rows}
    assert {"task", "overhead", "pipeline", "kernel", "flops", "matmul"} <= sections
    figures = {(r["section"], r["item"], r["variant"], r["metric"]): float(r["value"]) for r in rows}
    for key in [("task", "sine", "lstm", m) for m in ("train_samples_per_s", "computed_timesteps_per_s",
                                                      "median_step_ms", "first_step_s", "latency_ms_per_batch",
                                                      "latency_ms_per_sample")] + [
            ("overhead", "sine", "runner/plain", "throughput_ratio"),
            ("pipeline", "sine", "pipeline/cached", "throughput_ratio"),
            ("pipeline", "sine", "pipeline/cached", "ratio_min"),
            ("pipeline", "sine", "pipeline/cached", "best_round_ratio"),
            ("overhead", "sine", "runner/plain", "best_round_ratio"),
            ("overhead", "sine", "runner/plain (CPU time)", "throughput_ratio"),
            ("overhead", "sine", "runner", "cpu_epoch_s"),
            ("pipeline", "sine", "pipeline", "wait_p99_ms"),
            ("pipeline", "sine", "cached", "wait_batches"),
            ("kernel", "lstm", "no_xla, masked", "median_step_ms"),
            ("flops", "lstm probe", sizes.RUNNER_SETTINGS, "achieved_flops")]:
        assert figures[key] > 0, key
    assert figures[("kernel", "lstm", "no_xla, masked", "xla_used")] == 0.0
    assert not any(r["item"] == "stock" for r in rows)

    readme = (out / "README.md").read_text()
    for heading in ("## Findings", "## Runner overhead", "## Input pipeline", "## Kernel choices", "## Physical limit",
                    "## GPU", "## Compared with the previous run", "## Environment"):
        assert heading in readme, heading
    assert "load average (1/5/15 min) at start" in readme and "skipped stock" in readme
    for plot in ("kernels.png", "tasks.png"):
        assert (out / plot).stat().st_size > 1000
    assert not list(out.glob(".*"))  # atomic writes leave no temporary files

    # --render redraws the same README from perf.csv and perf.json, without measuring.
    (out / "README.md").unlink()
    assert cli.main(["--render", "--out", str(out)]) == 0
    assert (out / "README.md").read_text() == readme


def test_render_without_an_earlier_run_says_what_to_do(tmp_path, capsys):
    assert cli.main(["--render", "--out", str(tmp_path)]) == 2
    assert "run `python -m rnnbench.perf` first" in capsys.readouterr().err


def test_a_paired_ratio_is_the_median_round_and_a_stalled_round_only_widens_the_range():
    out = record.Measurements()
    cached, piped = [2.0, 7.4, 2.02, 1.92], [2.04, 2.0, 2.0, 2.0]  # round 2's cached epoch stalled
    timing.add_paired_ratio("pipeline", "imdb", "pipeline/cached", "throughput_ratio", cached, piped, out)
    assert out.get("pipeline", "imdb", "pipeline/cached", "throughput_ratio") == pytest.approx((2.0 / 2.04 + 1.01) / 2)
    assert out.get("pipeline", "imdb", "pipeline/cached", "ratio_min") == pytest.approx(0.96)
    assert out.get("pipeline", "imdb", "pipeline/cached", "ratio_max") == pytest.approx(3.7)
    assert out.get("pipeline", "imdb", "pipeline/cached", "best_round_ratio") == pytest.approx(0.96)


def test_data_wait_catches_a_pipeline_slower_than_the_model():
    import time

    import keras
    import tensorflow as tf

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    batches = tf.data.Dataset.from_tensor_slices((np.ones((24, 4), np.float32), np.ones((24, 1), np.float32)))
    batches = batches.batch(4).cache()

    def slowly(x, y):  # 30 ms per batch, far longer than a step of this model
        return tf.py_function(lambda a, b: (time.sleep(0.03), a, b)[1:], [x, y], [tf.float32, tf.float32])

    slow = batches.map(slowly).repeat()
    share, p99, timed = pipeline.data_wait(model, slow, batches_per_pass=6, min_seconds=0.0)
    assert timed == 6 and share > 0.5 and p99 >= 0.025
    cached_share, _, _ = pipeline.data_wait(model, batches.repeat(), batches_per_pass=6, min_seconds=0.0)
    assert cached_share < share


def test_a_quick_run_is_not_compared_with_a_full_one():
    full = [record.Row(*record.SIZES_KEY, 0.0), record.Row("task", "sine", "lstm", "params", 1.0)]
    quick = [record.Row(*record.SIZES_KEY, 1.0), record.Row("task", "sine", "lstm", "params", 2.0)]
    assert record.compare(full, quick) == []
    assert [c.ratio for c in record.compare(quick, quick)] == [1.0]


@pytest.mark.parametrize("unit, now, verdict", [("samples/s", 2.0, "better"), ("samples/s", 0.5, "worse"),
                                                ("ms", 2.0, "worse"), ("fraction", 0.5, "better"),
                                                ("ms", 1.05, ""), ("", 3.0, "")])
def test_changes_are_judged_by_the_direction_of_their_unit(unit, now, verdict):
    assert record.Change(record.Row("s", "i", "v", "m", now, unit), 1.0).verdict == verdict


def test_a_change_in_the_range_of_rounds_is_not_judged():
    for metric in ("ratio_min", "ratio_max"):
        assert record.Change(record.Row("pipeline", "sine", "pipeline/cached", metric, 2.0, "x"), 1.0).verdict == ""


def test_an_unreadable_previous_csv_is_reported_and_ignored(tmp_path, capsys):
    path = tmp_path / "perf.csv"
    path.write_text("a,b\n1,2\n")
    assert record.read_csv(path) == []
    assert "not compared" in capsys.readouterr().err


def test_real_lengths_of_right_padded_tokens_and_frames():
    tokens = np.array([[5, 3, 0, 0], [7, 0, 0, 0], [1, 2, 3, 4]])
    assert counting.real_lengths(tokens, InputSpec("tokens", vocab_size=10, masked=True)).tolist() == [2, 1, 4]
    frames = np.zeros((2, 3, 2), np.float32)
    frames[0, :2] = 1.0
    frames[1, 0, 1] = -1.0  # a frame is real when any feature differs from the padding value
    spec = InputSpec("features", feature_dim=2, masked=True)
    assert counting.real_lengths(frames, spec).tolist() == [2, 1]
    assert counting.real_lengths(frames, InputSpec("features", feature_dim=2)).tolist() == [3, 3]


def test_padding_without_buckets_pads_each_batch_to_its_longest_example():
    import tensorflow as tf

    spec = InputSpec("tokens", vocab_size=10, masked=True)
    # Bucketed: a batch of two 2-token reviews and a batch of two 4-token ones, so nothing is padding.
    short = tf.data.Dataset.from_tensor_slices((np.ones((2, 2), np.int32), np.arange(2))).batch(2)
    long = tf.data.Dataset.from_tensor_slices((np.ones((2, 4), np.int32), np.arange(2, 4))).batch(2)
    bucketed = counting.read_pass(short.concatenate(long), spec, keep_examples=True)
    assert (bucketed.samples, bucketed.computed_steps, bucketed.real_steps) == (4, 12, 12)
    assert bucketed.padded_fraction == 0.0
    assert sorted(len(x) for x, _ in bucketed.examples) == [2, 2, 4, 4]
    # One batch of all four pads the short ones to 4 tokens: 4 of 16 computed steps are padding.
    mixed = counting.read_pass(counting.unbucketed_batches(bucketed.examples, spec, batch_size=4, seed=0), spec)
    assert (mixed.samples, mixed.computed_steps, mixed.real_steps, mixed.batches) == (4, 16, 12, 1)
    assert mixed.padded_fraction == pytest.approx(0.25)


def test_recurrent_flops_count_both_kernels_of_every_gate():
    spec = kernels.kernel_probe_spec(features=5, timesteps=7, masked=False)
    model = lstm(spec, units=3)
    flops, stride = counting.recurrent_forward_flops(model)
    assert flops == 2 * (5 + 3) * 4 * 3 and stride == 1
    assert counting.training_flops(flops, timesteps=10) == 3 * 10 * flops


@pytest.mark.parametrize("setting, message", [("sine.no_such_option=1", "has no option 'no_such_option'"),
                                              ("sine.steps=many", "is not a valid int"),
                                              ("imdb.max_length=10", "one of the measured tasks")])
def test_task_settings_are_checked_before_anything_is_measured(tmp_path, capsys, setting, message):
    assert cli.main(["--quick", "--out", str(tmp_path), "--set", setting]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "perf.csv").exists()


def test_xla_is_used_when_asked_unless_op_determinism_is_on():
    # The README's claim about the runner: with op determinism (compute.set_seed) Keras refuses jit_compile=True.
    from tensorflow.python.framework import config as tf_config

    was_deterministic = tf_config.is_op_determinism_enabled()
    spec = kernels.kernel_probe_spec(features=2, timesteps=3, masked=False)
    try:
        assert kernels.compile_probe("gru", spec, units=2, jit_compile=True, deterministic=False).jit_compile is True
        assert kernels.compile_probe("gru", spec, units=2, jit_compile=True, deterministic=True).jit_compile is False
    finally:
        (tf_config.enable_op_determinism if was_deterministic else tf_config.disable_op_determinism)()


def test_the_xla_table_is_written_from_kernel_rows_without_measuring(tmp_path, capsys, monkeypatch):
    from rnnbench import compute
    from rnnbench.perf import xla_table

    def kernel(cell, variant, metric, value):
        return record.Row("kernel", cell, variant, metric, value, "ms" if metric == "median_step_ms" else "")

    rows = [record.Row(*record.SIZES_KEY, 0.0), record.Row("task", "sine", "lstm", "median_step_ms", 3.0, "ms")]
    for cell, steps in (("gru", {"no_xla": (35.5279, 34.3067), "xla": (12.6816, 14.8989)}),
                        ("lstm", {"no_xla": (17.7828, 38.0794), "xla": (19.2882, 19.2941)})):
        for index, mask in enumerate(("unmasked", "masked")):
            for variant, values in (*steps.items(), ("no_xla_deterministic", (99.0, 99.0))):
                rows.append(kernel(cell, f"{variant}, {mask}", "median_step_ms", values[index]))
                rows.append(kernel(cell, f"{variant}, {mask}", "xla_used", float(variant == "xla")))
    rows.append(kernel("simple_rnn", "no_xla, masked", "median_step_ms", 5.0))  # no xla row: left out
    csv_path = tmp_path / "perf.csv"
    record.write_csv(rows, csv_path)

    table = tmp_path / "xla_speedup.json"
    written = xla_table.write_from_csv(csv_path, table)
    expected = {"gru": {"unmasked": 2.8, "masked": 2.3}, "lstm": {"unmasked": 0.92, "masked": 1.97}}
    assert written["speedup"] == expected
    content = json.loads(table.read_text())
    assert content["speedup"] == expected and str(csv_path) in content["source"] and content["about"]

    # --xla-table-from writes the table the runner reads, and the runner's policy follows it.
    monkeypatch.setattr(compute, "XLA_TABLE", tmp_path / "runner_table.json")
    try:
        assert cli.main(["--xla-table-from", str(csv_path)]) == 0
        assert compute.cpu_xla_speedup() == {("gru", False): 2.8, ("gru", True): 2.3, ("lstm", False): 0.92,
                                             ("lstm", True): 1.97}
    finally:
        compute.cpu_xla_speedup.cache_clear()
    assert "wrote" in capsys.readouterr().out

    record.write_csv([r for r in rows if r.section != "kernel"], csv_path)
    assert cli.main(["--xla-table-from", str(csv_path)]) == 2
    assert "nothing to write the XLA table from" in capsys.readouterr().err
