"""OpenSLR yesno with CTC, the sanity task of the speech suite: GRU vs LSTM vs bidirectional GRU, 3 seeds.

Command:  rnnbench bench --task speech --experiment speech_yesno --set task.data_dir=$YESNO_DIR
          (YESNO_DIR is the folder of the 60 yesno wavs, e.g. an unpacked waves_yesno/)
Smoke:    the same with --smoke
Data:     60 files of 8 words ("yes"/"no") from one speaker; a seeded 20% of the files for test (12), 10% of the
          rest for validation, 43 for training. 13 MFCCs at 8 kHz, 10 ms hop; 4 frames stacked per step (25 steps/s). The
          best epoch is picked by validation loss: with 5 validation files most epochs tie at the same error rate.
Expected: test WER near 0 (issue 5's target). CTC first learns to emit only blanks (loss ~7 per file) and must
          break out of that plateau; with 43 files, batches of 4 give 11 updates per epoch and too few of them: the
          earlier configuration (10 k parameters, batch 4, dropout 0.2, learning rate 3e-3, 25 epochs) left 7 of 9
          runs (protocol 3) on the plateau, mean test WER 0.61-0.91 per model, worse than the most-frequent-
          transcript baseline (0.49); learning rate 1e-2 at batch 4 did not help (gru seed 0 still at WER 1 after
          14 epochs). Batches of 2, no dropout and 30 k parameters (this file) broke out within 5-12 epochs in
          tuning (gru seeds 0 and 1: validation WER 0 from epoch 6 and 12 on). With patience 6 (commit 64ac732,
          configuration 1ab052d8) 4 of 9 runs reached test WER 0 (gru seeds 0 and 1,
          lstm seed 1, bi_gru seed 1), bi_gru seed 2 0.073, and 4 runs were stopped by early stopping while still
          on the plateau (best epoch 1-7, WER 0.63-1.0): mean test WER bi_gru 0.233, gru 0.333, lstm 0.604. Runs
          leave the plateau as late as epoch 12-15, so early stopping is off here (patience 0) and every run
          trains 30 epochs. Measured (configuration 286a26a1, results/speech_yesno/): that did not
          help: the same runs stay on the plateau for all 30 epochs (gru seed 2 WER 1.0, lstm seeds 0 and 2 0.80
          and 0.96, bi_gru seed 0 0.51); 4 runs at WER 0, bi_gru seed 2 0.063. Mean test WER bi_gru 0.191, gru
          0.333, lstm 0.587: target NOT met. Whether a run leaves the plateau depends on its seed (initial weights
          and order), not on the epoch budget; next to try: a lower learning rate with warm-up, or a CTC-friendly
          initialisation (blank bias), on the same 9 runs.
          Then (2026-11-23, temporary store, while the IMDB grid shared the CPU): learning rate 1e-3 left gru seed 2
          on the plateau after 30 epochs (val WER 0.975). Stacking 4 frames per step instead of 2 (half as many
          recurrent steps, ~150 per file) freed it: gru seed 2 val WER 0 from epoch 4, lstm seed 2 from epoch 1,
          both test WER 0. So the plateau is most likely about credit assignment over ~300 steps rather than the optimiser. So
          this file stacks 4 frames and trains 20 epochs (patience 0).
          Measured (configuration a472e8da, commit ca4c998, run beside the IMDB grid; repeated at 941081a with identical
          losses and error rates in every run, results/speech_yesno/): lstm
          test WER 0 on all 3 seeds, gru 0, 0, 0.031 (mean 0.010), bi_gru 0, 0.458, 0.448 (mean 0.302; baseline
          0.490). The issue's "near 0" holds for lstm and gru, and for the best model on every seed; bi_gru's two
          failures overfit rather than stall (seed 1: train loss 0.1 against validation loss 11 after 40 epochs in
          tuning). Dropout 0.2 only moved the failure to another seed (bi_gru seed 2 to val WER 0, seed 0 from 0
          to 0.25), so it is not adopted.
Time:     2-4 s per epoch per model (with 4 frames stacked), beside another benchmark on the 2-core CPU; 12 minutes
          for the grid of 9 x 20 epochs.
Hardware: 2-core x86-64 CPU, no GPU, TensorFlow 2.21 / Keras 3.15.
"""

from rnnbench.config import data_path  # $RNNBENCH_DATA_DIR/<folder>, or None: then pass --set task.data_dir
CONFIG = {
    "task": "speech",
    "models": ["gru", "lstm", "bi_gru"],
    "seeds": [0, 1, 2],
    "task_options": {"dataset": "yesno", "data_dir": data_path("yesno", "waves_yesno"), "test_fraction": 0.2, "val_fraction": 0.1, "monitor": "loss"},
    "model_options": {"param_budget": 30_000, "subsample": 4},
    "train": {"epochs": 20, "batch_size": 2, "learning_rate": 5e-3, "patience": 0},
}

SMOKE = {
    "models": ["gru"],
    "seeds": [0],
    "task.limit": 6,
    "train.epochs": 1,
}
