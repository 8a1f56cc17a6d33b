"""The adding problem swept over the delay T: which models still sum two marked values T steps apart, 3 seeds.

Command:  make bench TASK=adding SWEEP=1   (rnnbench bench --task adding --sweep: one grid per T in SWEEP, each its
          own configuration in the MLflow experiment rnnbench-adding; rerunning skips finished runs). Without SWEEP=1,
          one grid at T = 100 (the same configuration as the sweep's T = 100, so its runs count for both).
Smoke:    make bench TASK=adding SMOKE=1 SWEEP=1   (T = 10 and 20, 256 sequences, 2 models, one epoch: about a
          minute). A grid without tcn needs --set model.blocks dropped: only tcn takes it.
Expected: the yardstick: always predicting 1 scores MSE 1/6 (~0.167, baseline predict_one);
          solved means mean test MSE over seeds below 0.01. The literature leads one to expect the gated cells
          (LSTM, GRU) and attention to solve the short delays and SimpleRNN to fall back to the baseline first, but
          at 12k parameters, 10,000 sequences and this training budget on a CPU. Measured so far, T = 50 only
          (c7c6337, results/adding): solved by lstm, gru, transformer and tcn in every seed (mean MSE 2-3e-4),
          by simple_rnn on the mean only (0.008, 2 seeds of 3); esn 0.139, near the baseline (results/adding/NOTES.md).
Time:     T = 50: 29 minutes for its 18 runs (0.6-2.7 minutes each, none capped; the first half beside a niced test
          run). Each run stops after 30 epochs, 6 epochs without improvement, or 5 minutes of training
          (train.max_minutes), so the 90 runs of the sweep take at most about 8 hours plus evaluation: more than a
          session, hence a few values at a time with --values (make bench TASK=adding SWEEP=1 VALUES=100 REFERENCE=1);
          a run the cap stops counts as trained at that budget, which the report's time_capped column shows.
Hardware: a 2-core x86-64 CPU (no GPU), TensorFlow 2.21 / Keras 3.15.
Results:  reports/adding/README.md (rnnbench report --task adding): the longest T each model solves and test loss
          against T; each T's own report in reports/adding/length_<T>/.
"""

CONFIG = {
    "task": "adding",
    # Recurrent cells against the alternatives to recurrence: the question is how far back each can reach.
    "models": ["simple_rnn", "lstm", "gru", "transformer", "esn", "tcn"],
    # Three seeds: "solved" is judged on the mean over them, and the report shows how many seeds solve alone.
    "seeds": [0, 1, 2],
    # length stated, so that the plain grid is the sweep's T = 100; 10,000 sequences is what 2 cores can afford.
    "task_options": {"length": 100, "train_size": 10000, "val_size": 1000, "test_size": 1000},
    # Equal parameters. blocks = 8 gives the TCN a receptive field of 1021 steps, more than the longest T (800):
    # with its default 61 it could not see the first marker at all, and would fail by construction, not by learning.
    "model_options": {"param_budget": 12_000, "blocks": 8},
    # The 5-minute cap bounds the sweep's time on the 2-core CPU; halving the rate on plateaus helps the slow starts
    # typical of this problem (long flat phase near the baseline, then a drop).
    "train": {"epochs": 30, "batch_size": 50, "learning_rate": 1e-3, "patience": 6, "reduce_lr_patience": 3,
              "max_minutes": 5.0},
}

# The delays of issue 19, doubling from 50 to 800.
SWEEP = {"task.length": [50, 100, 200, 400, 800]}

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
