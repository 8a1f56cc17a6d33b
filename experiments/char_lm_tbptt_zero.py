"""Character LM with zero state, the control arm of char_lm_tbptt: lstm and gru, 300k parameters, 3 seeds.

Command:  TFDS_DATA_DIR=<tfds data dir> make bench TASK=char_lm_tbptt_zero
          (rnnbench bench --task char_lm --experiment char_lm_tbptt_zero); compare with experiments/char_lm_tbptt.py
          (carried state), which differs from this file in task.state only.
Smoke:    TFDS_DATA_DIR=<tfds data dir> make bench TASK=char_lm_tbptt_zero SMOKE=1   (100k training characters,
          lstm and gru at 30k parameters, one epoch: 59 s on the busy 2-core CPU)
Setup:    task.state=zero, the char_lm task's default (as experiments/char_lm.py): independent 64-character windows,
          each from a zero state, reshuffled every epoch. Same seq_len, batch size, parameter budget, learning rate
          and 6 epochs as char_lm_tbptt, all 6 trained (no patience, no time cap), and an epoch reads the training
          text once, as there.
Expected: the baseline char_lm_tbptt is measured against. Measured at 8e2d042, 3 seeds: test bpc gru 2.413,
          lstm 2.472 (the comparison: results/char_lm_tbptt/against_char_lm_tbptt_zero.md).
Time:     22.9 s (lstm) and 24.7 s (gru) per epoch at load ~2 on the 2-core CPU: about 20 minutes for the 6 runs.
Hardware: 2-core x86-64 CPU (AMD EPYC, no GPU), TensorFlow 2.21 / Keras 3.15, shared with other jobs.
Results:  results/char_lm_tbptt_zero/README.md (rnnbench report).
"""

CONFIG = {
    "task": "char_lm",
    "models": ["lstm", "gru"],
    "seeds": [0, 1, 2],
    "task_options": {
        "state": "zero",  # the one setting that differs from experiments/char_lm_tbptt.py
        "seq_len": 64,
        "sample_length": 500,
        "sample_temperature": 0.8,
    },
    "model_options": {
        "param_budget": 300_000,
        "embedding_dim": 64,
    },
    "train": {
        "epochs": 6,
        "batch_size": 64,
        "learning_rate": 4e-3,
        "clipnorm": 1.0,
        "patience": 0,  # equal compute: every run trains all its epochs
        "max_minutes": 0.0,
    },
}

SMOKE = {
    "seeds": [0],
    "task.max_train_chars": 100_000,
    "task.max_eval_chars": 10_000,
    "task.sample_length": 100,
    "model.param_budget": 30_000,
    "train.epochs": 1,
}
