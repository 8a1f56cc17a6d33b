"""OpenSLR yesno with CTC, the sanity task of the speech suite: GRU vs LSTM vs bidirectional GRU, 3 seeds.

Command:  rnnbench bench --task speech --experiment speech_yesno --set task.data_dir=$YESNO_DIR
          (YESNO_DIR is the folder of the 60 yesno wavs, e.g. an unpacked waves_yesno/)
Smoke:    the same with --smoke
Data:     60 files of 8 words ("yes"/"no") from one speaker; a seeded 20% of the files for test (12), 10% of the
          rest for validation, 43 for training. 13 MFCCs at 8 kHz, 10 ms hop; 2 frames stacked per step. The best
          epoch is picked by validation loss: with 5 validation files most epochs tie at the same error rate.
Expected: test WER near 0 (issue 5's target). In a tuning run a 10 k-parameter bi_gru decoded the validation files
          without error from the first epoch on while the validation loss kept falling for 20 epochs; smaller
          training sets (32 files) and coarser stacking (3-4 frames) gave 30-60% WER, so keep these settings.
          Measured figures: to be filled from results/speech/ after the reference run.
Time:     about 2-8 s per epoch per model on the 2-core CPU; under 20 minutes for the grid (estimate).
Hardware: 2-core x86-64 CPU, no GPU, TensorFlow 2.21 / Keras 3.15.
"""

from rnnbench.config import data_path  # $RNNBENCH_DATA_DIR/<folder>, or None: then pass --set task.data_dir
CONFIG = {
    "task": "speech",
    "models": ["gru", "lstm", "bi_gru"],
    "seeds": [0, 1, 2],
    "task_options": {"dataset": "yesno", "data_dir": data_path("yesno", "waves_yesno"), "test_fraction": 0.2, "val_fraction": 0.1, "monitor": "loss"},
    "model_options": {"param_budget": 10_000, "subsample": 2, "dropout": 0.2},
    "train": {"epochs": 25, "batch_size": 4, "learning_rate": 3e-3, "patience": 6},
}

SMOKE = {
    "models": ["gru"],
    "seeds": [0],
    "task.limit": 6,
    "train.epochs": 1,
}
