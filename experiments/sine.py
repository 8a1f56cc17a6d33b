"""Noisy sine forecasting: LSTM vs GRU vs SimpleRNN and their variants at an equal parameter budget, 3 seeds.

Command:  make bench TASK=sine        (rnnbench bench --task sine)
Smoke:    make bench TASK=sine SMOKE=1
Expected: LSTM and GRU reach test RMSE within 10% of the noise sigma (rmse_over_noise <= 1.10) and beat persistence
          by a wide margin; the linear AR baseline is also close to the noise floor (a sum of sines is a linear
          recurrence), so this task checks the pipeline more than it separates the cells.
Hardware: measured on a 2-core x86-64 CPU (no GPU), TensorFlow 2.21 / Keras 3.15; figures in results/sine/README.md.
"""

CONFIG = {
    "task": "sine",
    "models": ["simple_rnn", "lstm", "gru", "lstm_attention", "gru_attention", "bi_lstm"],
    "seeds": [0, 1, 2],
    "task_options": {"steps": 12000, "noise": 0.1, "input_len": 32, "horizon": 8},
    "model_options": {"param_budget": 12_000},
    "train": {"epochs": 30, "batch_size": 64, "learning_rate": 3e-3, "patience": 6, "reduce_lr_patience": 2},
}

SMOKE = {
    "models": ["lstm", "gru"],
    "seeds": [0],
    "task.steps": 2000,
    "model.param_budget": 3_000,
    "train.epochs": 2,
}
