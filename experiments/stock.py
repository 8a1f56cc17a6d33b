"""S&P 500 daily forecasting: every recurrent model against persistence, drift, moving average and linear AR, 3 seeds.

Command:  make bench TASK=stock        (rnnbench bench --task stock)
Smoke:    make bench TASK=stock SMOKE=1   (2016-2023 only, 3 models, one seed, one epoch: about 2 minutes)
Data:     the S&P 500 (^GSPC) daily closes 1927-12-30 .. 2023-12-28, found as stocks/sp500_GSPC_daily_1927_2023.csv
          under $RNNBENCH_DATA_DIR (the datasets folder of this machine); any other CSV with --set task.data_file=PATH (task.date_column /
          task.price_column name its columns). Test period: 2009-08 .. 2023-12, cut into 3 folds.
Expected: no recurrent model beats persistence (the random walk) with statistical significance: test skill within
          about +-0.01 of zero, one-sided Diebold-Mariano p-values far above the Bonferroni level 0.05 / 9, and the
          report's "Does any recurrent model beat persistence?" section answering No. In tuning runs (one seed each,
          full series) lstm reached skill 0.0003 (p = 0.48) and bi_lstm_attention -0.0006 (p = 0.93). The baselines
          are deterministic: drift 0.0005 (p = 0.042 unadjusted, closer to significance than any model in tuning),
          linear AR -0.0012 (p = 0.68), 20-day moving average -1.41; directional accuracy of drift 0.544 (the share
          of up days).
Hardware: sized for about 30 minutes on a 2-core x86-64 CPU (no GPU), TensorFlow 2.21 / Keras 3.15. At 20k parameters
          and batch 128 one epoch over the 16,849 training windows took 3-4 s (simple_rnn, gru, lstm), 8 s
          (lstm_attention) and 11 s (bi_lstm) on that CPU shared with other jobs, plus 10-20 s per run for building,
          evaluation and logging. Early stopping (patience 3) and the 1-minute training cap per run bound the total
          (at most about 40 minutes). Measured figures: to be filled from results/stock/ after the reference run.
"""
from rnnbench.config import data_path

SP500_CSV = data_path("stocks", "sp500_GSPC_daily_1927_2023.csv")

CONFIG = {
    "task": "stock",
    "models": ["simple_rnn", "lstm", "gru", "bi_simple_rnn", "bi_lstm", "bi_gru", "lstm_attention", "gru_attention",
               "bi_lstm_attention"],
    "seeds": [0, 1, 2],
    "task_options": {
        "data_file": SP500_CSV,
        "target": "log_return",
        "input_len": 30,
        "horizon": 1,
        "folds": 3,
        "ma_window": 20,
    },
    "model_options": {"param_budget": 20_000},
    "train": {"epochs": 8, "batch_size": 128, "learning_rate": 1e-3, "patience": 3, "max_minutes": 1.0},
}

SMOKE = {
    "models": ["lstm", "bi_gru", "gru_attention"],
    "seeds": [0],
    "task.start_date": "2016-01-01",
    "model.param_budget": 5_000,
    "train.epochs": 1,
}
