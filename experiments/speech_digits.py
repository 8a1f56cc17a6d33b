"""Connected spoken digits (FSDD via tfds spoken_digit) with CTC: SimpleRNN vs GRU vs LSTM vs bidirectional GRU.

Command:  TFDS_DATA_DIR=<tfds folder holding spoken_digit> rnnbench bench --task speech --experiment speech_digits
          (or --set task.data_dir=<FSDD recordings folder> instead of TFDS_DATA_DIR)
Smoke:    the same with --smoke
Data:     utterances of 1-5 clips of one speaker joined by 80-300 ms silences: 2,000 for training from clips with
          index 5-49 (minus 10% of those clips held out for the 300 validation utterances), 300 for test from clips
          with index 0-4 only, so no test recording is heard in training. 13 MFCCs + deltas + delta-deltas at 8 kHz,
          10 ms hop; 3 frames stacked per step. Targets are digits, so `wer` is the digit error rate.
Expected: digit error rate (test_wer) at most 5% for the gated cells (issue 5's target).
Measured: (protocol 3, commit 62f9d48, 2-core CPU shared part of the time with a niced tuning job;
          results/speech_digits/) mean test digit error
          rate over 3 seeds: bi_gru 0.019 (95% CI +-0.033; seeds 0.012, 0.010, 0.034), gru 0.028 (+-0.009),
          simple_rnn 0.037 (+-0.034), lstm 0.038 (+-0.027; worst seed 0.0496). Target met by every model and every
          seed. Beam search (width 16) is a little better than greedy (bi_gru 0.017, lstm 0.034). Baselines: most
          frequent transcript 0.913, empty output 1.0. Best epochs 5-8 of 8.
Time:     12.5 minutes for the grid (MFCCs already cached; computing them takes about 1.5 minutes once): 4.2-5.6 s
          per epoch and about 1 minute per run including test decoding. An earlier attempt with XLA (protocol 2)
          spent about 60 s compiling in every run's first epoch and died in its ninth run when XLA's compiled code
          used up the process's memory maps; see `runner.use_xla`.
Hardware: 2-core x86-64 CPU, no GPU, TensorFlow 2.21 / Keras 3.15.
"""

CONFIG = {
    "task": "speech",
    "models": ["simple_rnn", "gru", "lstm", "bi_gru"],
    "seeds": [0, 1, 2],
    "task_options": {"dataset": "digits", "deltas": 2, "max_digits": 5, "train_utterances": 2000,
                     "eval_utterances": 300},
    "model_options": {"param_budget": 50_000, "subsample": 3},
    "train": {"epochs": 8, "batch_size": 32, "learning_rate": 2e-3, "patience": 3},
}

SMOKE = {
    "models": ["gru"],
    "seeds": [0],
    "task.train_utterances": 64,
    "task.eval_utterances": 16,
    "model.param_budget": 10_000,
    "train.epochs": 1,
}
