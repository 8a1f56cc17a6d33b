"""Gradient clipping where it matters: SimpleRNN (and LSTM as the control) on the adding problem at T = 200, with
train.clipnorm off against on, at a high learning rate; 3 seeds. Divergence counts and final test loss.

Command:  make bench TASK=adding_clipping SWEEP=1   (rnnbench bench --task adding --experiment adding_clipping
          --sweep: one grid per train.clipnorm in SWEEP, 0 = off, each its own configuration in the MLflow
          experiment rnnbench-adding_clipping).
Smoke:    make bench TASK=adding_clipping SMOKE=1 SWEEP=1   (T = 20, 256 sequences, simple_rnn, one epoch each)
Setup:    the adding task at T = 200 with experiments/adding.py's data sizes and 12k-parameter budget, but a learning
          rate of 1e-2, ten times adding.py's: at 1e-3 Adam's normalised steps rarely let a gradient spike move the
          weights far, so clipping would have little to do; a high rate is where practitioners lean on it (Pascanu,
          Mikolov and Bengio 2013 motivate clipping with the exploding gradients of simple recurrent networks). Each
          run logs per epoch the global gradient norm before clipping (grad_norm_mean, grad_norm_max) and how many
          steps clipping changed (clipped_steps), and its gradient flow through time at initialisation and at the
          best weights (grad_flow_*; gradient_flow.json and .png among its artifacts).
Expected: hypothesis: without clipping, some SimpleRNN seeds diverge (a non-finite loss, or a test loss far above
          the baselines') or end worse than with clipping; LSTM is affected less. Measured at 869e9ae
          (results/adding_clipping, NOTES.md there): not borne out. No run diverged either way, though SimpleRNN's
          gradient norm spiked to about 2,000; SimpleRNN stays at the baseline (MSE 0.166-0.173) with and without
          clipping; LSTM solves T = 200 both ways, with clipping about 4 times lower (5.7e-5 against 2.3e-4, lower
          in each of the 3 seeds).
Time:     29 minutes for the 12 runs on the 2-core CPU: SimpleRNN 31-44 s per run (early-stopped after 7-11 epochs),
          LSTM 3.8-4.4 minutes (30 epochs of 7.2-7.8 s; the 5-minute cap never bound).
Hardware: a 2-core x86-64 CPU (no GPU), TensorFlow 2.21 / Keras 3.15.
Results:  results/adding_clipping/README.md (rnnbench report --task adding_clipping): per clipnorm
          value the mean test MSE, the seeds that solve T = 200, and the diverged runs; each value's own report in
          results/adding_clipping/clipnorm_<value>/.
"""

CONFIG = {
    "task": "adding",
    # The cell whose gradients explode, and a gated cell as the control.
    "models": ["simple_rnn", "lstm"],
    # Three seeds: divergence is a per-seed event, counted in the report.
    "seeds": [0, 1, 2],
    # A long delay, beyond where experiments/adding.py expects SimpleRNN to struggle; its data sizes.
    "task_options": {"length": 200, "train_size": 10000, "val_size": 1000, "test_size": 1000},
    # experiments/adding.py's equal-parameter budget.
    "model_options": {"param_budget": 12_000},
    # A learning rate ten times adding.py's (Setup above); otherwise adding.py's schedule and cap.
    "train": {"epochs": 30, "batch_size": 50, "learning_rate": 1e-2, "patience": 6, "reduce_lr_patience": 3,
              "max_minutes": 5.0},
}

# Clipping off (0) against on at global norm 1, the suite's default.
SWEEP = {"train.clipnorm": [0.0, 1.0]}

SMOKE = {  # the same path on short sequences and a tiny budget
    "models": ["simple_rnn"],
    "seeds": [0],
    "task.length": 20,
    "task.train_size": 256,
    "task.val_size": 64,
    "task.test_size": 64,
    "model.param_budget": 3_000,
    "train.epochs": 1,
}
SMOKE_SWEEP = {"train.clipnorm": [0.0, 1.0]}
