"""Character-level language model on Tiny Shakespeare: the five causal recurrent models at 300k parameters, 2 seeds.

Command:  TFDS_DATA_DIR=<tfds data dir> make bench TASK=char_lm     (rnnbench bench --task char_lm)
          (without TFDS_DATA_DIR, tensorflow-datasets downloads tiny_shakespeare, 1 MB, into ~/tensorflow_datasets;
          on the project's machines the data dir is ../shared/data/tfds)
Smoke:    TFDS_DATA_DIR=<tfds data dir> make bench TASK=char_lm SMOKE=1   (100k training characters, lstm and
          gru_attention at 30k parameters, one epoch: 103 s on the busy 2-core CPU)
Data:     tensorflow-datasets tiny_shakespeare 1.0.0: train 1,003,854 / validation 55,770 / test 55,770 characters,
          65 characters plus the OOV id. Any other UTF-8 text file with --set task.data_file=PATH (90/5/5 by
          position). Windows of 64 characters; bidirectional models are refused (they would read the characters
          they must predict).
Expected: target best validation loss <= 1.60 nats/char (2.31 bits/char) for the best model. In tuning (one run, gru
          seed 0, this configuration but 7 epochs) validation loss per epoch was 1.900, 1.686, 1.624, 1.580, 1.554,
          1.549, 1.544 nats/char; at its best epoch the test split scored 1.657 nats/char = 2.39 bpc (the test split
          is harder than validation). An earlier try with 100-character windows, batch 128 and learning rate 3e-3
          (lstm) learned far slower per minute (validation 2.01 after 3 epochs), hence the shorter windows, smaller
          batches and higher learning rate. Baselines on the test split (same scored characters): trigram 2.12
          nats/char (3.05 bpc), bigram 2.49 (3.60), unigram 3.36 (4.85).
Measured: (protocol 3, commit b91d4d2, seeds 0 and 1, results/char_lm/) best validation loss, mean of 2 seeds:
          lstm_attention 1.553, gru 1.563, gru_attention 1.570, lstm 1.620, simple_rnn 1.826 nats/char: the target
          is met by lstm_attention, gru and gru_attention, missed by lstm (+0.020) and simple_rnn. Test bpc: gru
          2.412, gru_attention 2.447, lstm_attention 2.451, lstm 2.486, simple_rnn 2.741. Every run trained its 6
          epochs within the cap (24-31 s per epoch).
Hardware: 2-core x86-64 CPU (AMD EPYC, no GPU), TensorFlow 2.21 / Keras 3.15, shared with other jobs (load about 7):
          one gru epoch took 51-82 s (median 57 s). Sized for about an hour: 10 runs of at most 6 epochs, each run's
          training capped at 5 minutes (the epoch under way when the cap passes still finishes, and the best epoch
          counts), plus about 30 s per run for evaluation, the 500-character sample and logging. On an idle CPU
          every run completes its 6 epochs in less time.
"""

CONFIG = {
    "task": "char_lm",
    "models": ["simple_rnn", "lstm", "gru", "lstm_attention", "gru_attention"],
    "seeds": [0, 1],
    "task_options": {"seq_len": 64, "sample_length": 500, "sample_temperature": 0.8},
    "model_options": {"param_budget": 300_000, "embedding_dim": 64},
    "train": {"epochs": 6, "batch_size": 64, "learning_rate": 4e-3, "clipnorm": 1.0, "patience": 2,
              "max_minutes": 5.0},
}

SMOKE = {
    "models": ["lstm", "gru_attention"],
    "seeds": [0],
    "task.max_train_chars": 100_000,
    "task.max_eval_chars": 10_000,
    "task.sample_length": 100,
    "model.param_budget": 30_000,
    "train.epochs": 1,
}
