"""Connected spoken digits (FSDD via tfds spoken_digit) with CTC: SimpleRNN vs GRU vs LSTM vs bidirectional GRU.

Command:  TFDS_DATA_DIR=<tfds folder holding spoken_digit> rnnbench bench --task speech --experiment speech_digits
          (or --set task.data_dir=<FSDD recordings folder> instead of TFDS_DATA_DIR)
Smoke:    the same with --smoke
Data:     utterances of 1-5 clips of one speaker joined by 80-300 ms silences: 2,000 for training from clips with
          index 5-49 (minus 10% of those clips held out for the 300 validation utterances), 300 for test from clips
          with index 0-4 only, so no test recording is heard in training. 13 MFCCs + deltas + delta-deltas at 8 kHz,
          10 ms hop; 3 frames stacked per step. Targets are digits, so `wer` is the digit error rate.
Expected: digit error rate (test_wer) at most 5% for the gated cells (issue 5's target). A tuning run of a 2-layer
          bi_gru (146 k parameters) reached 0.4% test digit error rate after 3 epochs; these 50 k models should get
          close. SimpleRNN is expected to trail. Measured figures: to be filled from results/speech/ after the
          reference run.
Time:     the first run computes and caches the MFCCs (about 1.5 minutes); then roughly 10-30 s per epoch per model
          on the 2-core CPU, about 20 minutes for the grid (estimate).
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
