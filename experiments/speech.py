"""Speech recognition on CMU AN4 with CTC: bidirectional GRU vs bidirectional LSTM at an equal parameter budget.

Command:  rnnbench bench --task speech --set task.data_dir=$AN4_DIR
          (make bench TASK=speech with the same --set; AN4_DIR is a folder holding etc/an4_{train,test}.{fileids,
          transcription} and an4_feat_mfc.tar.gz or the unpacked an4/feat/ tree)
Smoke:    rnnbench bench --task speech --smoke --set task.data_dir=$AN4_DIR
Data:     AN4's precomputed 13-dim cepstra (100 frames/s) plus deltas and delta-deltas, per-utterance normalised;
          948 training utterances minus ~10% held-out training speakers for validation, the official 130 test
          utterances. Character targets (A-Z and space); 3 frames stacked per step (33 steps/s).
Expected: test CER at most 15% for the better model (issue 5's target), WER reported beside it; beam search a
          little better than greedy. A tuning run of bi_gru (2 x 128 units, ~0.5 M parameters) reached validation
          CER 0.24 after 5 epochs and 0.17 after 7, still falling.
Measured: (protocol 3, commit 62f9d48, seed 0, results/speech/) test CER / WER, greedy: bi_lstm 0.078 / 0.163,
          bi_gru 0.099 / 0.211; beam search (width 16): bi_lstm 0.073 / 0.155, bi_gru 0.095 / 0.201. Target met by
          both. Baselines: most frequent transcript CER 0.837, empty output 1.0. Both ran all 20 epochs without
          hitting the time cap (best epochs 20 and 18: still improving), 12-13 s per epoch.
Time:     about 45-100 s per epoch for each model on the 2-core CPU (measured while other jobs shared it); each run
          is capped at 12 minutes by train.max_minutes, so the whole grid stays under 30 minutes. On faster hardware
          the runs simply train for more epochs within that cap.
Hardware: 2-core x86-64 CPU, no GPU, TensorFlow 2.21 / Keras 3.15.
"""

from rnnbench.config import data_path  # $RNNBENCH_DATA_DIR/<folder>, or None: then pass --set task.data_dir
CONFIG = {
    "task": "speech",
    "models": ["bi_gru", "bi_lstm"],
    "seeds": [0],
    "task_options": {"dataset": "an4", "data_dir": data_path("an4_mfcc"), "deltas": 2, "val_fraction": 0.1, "beam_width": 16},
    "model_options": {"param_budget": 500_000, "layers": 2, "subsample": 3, "dropout": 0.1},
    "train": {"epochs": 20, "batch_size": 32, "learning_rate": 2e-3, "patience": 4, "max_minutes": 12.0},
}

SMOKE = {
    "models": ["bi_gru"],
    "seeds": [0],
    "task.limit": 40,
    "model.param_budget": 30_000,
    "train.epochs": 1,
    "train.max_minutes": 0.0,
}
