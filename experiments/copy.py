"""Copy memory swept over the delay T: which models play back 10 symbols after T steps, 3 seeds.

Command:  make bench TASK=copy SWEEP=1   (rnnbench bench --task copy --sweep: one grid per T in SWEEP, each its own
          configuration in the MLflow experiment rnnbench-copy; rerunning skips finished runs). Without SWEEP=1, one
          grid at T = 100 (the same configuration as the sweep's T = 100).
Smoke:    make bench TASK=copy SMOKE=1 SWEEP=1   (T = 10 and 20, 256 sequences, 2 models, one epoch: about a
          minute). A grid without tcn needs --set model.blocks dropped: only tcn takes it.
Expected: not yet measured. The yardstick: the memoryless baseline's cross-entropy 10 ln 8 / (T + 20) (0.173 at
          T = 100) and recall accuracy 1/8; solved means mean test recall accuracy over seeds of at least 0.99.
          Arjovsky et al. (2016) found LSTMs stuck at the memoryless baseline for long delays; whether that holds at
          12k parameters, 10,000 sequences and this budget, and how attention and the TCN fare, has not been run.
Time:     not yet measured. Each run stops after 30 epochs, 6 epochs without improvement, or 5 minutes of training
          (train.max_minutes), so the 72 runs take at most about 6 hours plus evaluation; a run the cap stops
          counts as trained at that budget (the report's time_capped column).
Hardware: a 2-core x86-64 CPU (no GPU), TensorFlow 2.21 / Keras 3.15.
Results:  reports/copy/README.md (rnnbench report --task copy): the longest T each model solves and test loss
          against T; each T's own report in reports/copy/length_<T>/.
"""

CONFIG = {
    "task": "copy",
    # Recurrent cells against the alternatives to recurrence: the question is how far back each can reach.
    "models": ["simple_rnn", "lstm", "gru", "transformer", "esn", "tcn"],
    # Three seeds: "solved" is judged on the mean over them, and the report shows how many seeds solve alone.
    "seeds": [0, 1, 2],
    # length stated, so that the plain grid is the sweep's T = 100; 10,000 sequences is what 2 cores can afford.
    "task_options": {"length": 100, "train_size": 10000, "val_size": 1000, "test_size": 1000},
    # Equal parameters. blocks = 7 gives the TCN a receptive field of 509 steps: the recall at step T + 10 + j needs
    # symbol j, T + 10 steps back (410 at T = 400); its default 61 would fail by construction, not by learning.
    "model_options": {"param_budget": 12_000, "blocks": 7},
    # The 5-minute cap bounds the sweep's time on the 2-core CPU; halving the rate on plateaus helps the long phase
    # at the memoryless loss that this task is known for.
    "train": {"epochs": 30, "batch_size": 50, "learning_rate": 1e-3, "patience": 6, "reduce_lr_patience": 3,
              "max_minutes": 5.0},
}

# The delays of issue 19, doubling from 50 to 400.
SWEEP = {"task.length": [50, 100, 200, 400]}

SMOKE = {  # the same path on short sequences and a tiny budget
    "models": ["lstm", "tcn"],
    "seeds": [0],
    "task.train_size": 256,
    "task.val_size": 64,
    "task.test_size": 64,
    "model.param_budget": 3_000,
    "model.blocks": 4,
    "train.epochs": 1,
}
SMOKE_SWEEP = {"task.length": [10, 20]}
