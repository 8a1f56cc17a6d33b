"""How fast rnnbench trains and infers, and where the time goes: the evidence behind its speed-related defaults.

    python -m rnnbench.perf [--out results/perf] [--quick] [--tasks sine,imdb] [--baseline PATH]
                            [--set TASK.OPTION=VALUE ...] [--render] [--xla-table-from CSV]

writes, each file atomically, into `--out` (with --quick, results/perf_quick by default):
  perf.csv     one row per figure: section, item, variant, metric, value, unit
  perf.json    the rest of the record: environment, setups, skipped tasks, the previous figures compared with;
               `--render` redraws README.md and the plots from perf.csv and perf.json without measuring
  README.md    the environment (load average included), one table per section, what the figures mean, findings, and
               the comparison with the previous perf.csv (also printed)
  kernels.png  steady training-step time per recurrent cell and kernel choice
  tasks.png    training throughput per task and input variant; achieved FLOP/s against the measured matmul peak
and a full run (not --quick, on a CPU) writes the runner's XLA table, rnnbench/xla_speedup.json (`compute.XLA_TABLE`),
from its kernel rows; `--xla-table-from CSV` rewrites that table from an existing perf.csv, measuring nothing.

Sections (the `section` column), each a module of this package:
  task      (throughput.py) each task's reference model, the `lstm` builder with the model options of
            `experiments/<task>.py`, trained on a slice of the task (the experiment's SMOKE task options, at most
            `steps_per_epoch` batches per epoch) exactly as the runner builds and compiles it: samples/s and
            timesteps/s, median step time, time until the first step has finished (tracing, compilation),
            inference latency (`measure.measure_latency`), achieved FLOP/s of its recurrent layers.
  overhead  (overhead.py) the runner's own callbacks (NaN guard, best weights, epoch timer, per-epoch checkpoint,
            progress line; MLflow logging left out) against a plain `model.fit` on the same compiled model, data and
            batches.
  pipeline  (pipeline.py) the task's tf.data pipeline against the same batches cached in memory, the share of training
            time the model waits for its next batch, and the pipeline alone.
  padding   (padding.py) the share of computed timesteps that are padding, with the task's length bucketing and
            without it (each batch padded to its longest example), and the training speed on both.
  kernel    (kernels.py) SimpleRNN, LSTM and GRU with jit_compile (XLA) on and off, masked and unmasked input, and the
            runner's deterministic ops, on one synthetic batch shape.
  flops     (flops.py) achieved FLOP/s of LSTM training steps against the float32 matmul peak measured in the same run.
  matmul    (flops.py) that peak (start and end of the run, so a change in load shows).
The rest: cli.py (the flags, one run), sizes.py (full and --quick sizes), timing.py (clocks, paired ratios),
rounds.py (a task's alternated rounds, shared by task, pipeline and padding), counting.py (timesteps, padding, FLOPs),
reference.py (what is trained), record.py (perf.csv, comparison with a previous run), xla_table.py, and the README:
report.py with findings.py and charts.py, whose words are report.md and sentences.md.

Tasks other than sine need their data (TFDS_DATA_DIR for the tensorflow-datasets tasks, RNNBENCH_DATA_DIR for files
the experiments name, or `--set TASK.OPTION=VALUE`, e.g. speech.data_dir) and an experiment file; a task without them
is listed as skipped, with the loader's reason.
Timings on a shared machine move with its load: the README records the load average at the start and the end.
"""
