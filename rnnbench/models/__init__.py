"""Model builders: plain functions `(spec, **options) -> keras.Model`, usable from the runner or a notebook.

    from rnnbench.models import lstm_attention
    model = lstm_attention(spec, units=64)

Everything here uses `keras.layers` and `keras.ops` only, so it runs on any Keras 3 backend.
"""
from rnnbench.models.recurrent import (  # noqa: F401
    CELLS,
    IncompatibleModelError,
    bi_gru,
    bi_lstm,
    bi_lstm_attention,
    bi_simple_rnn,
    count_trainable,
    gru,
    gru_attention,
    lstm,
    lstm_attention,
    recurrent_model,
    simple_rnn,
)
from rnnbench.models.tools import attention_weights, compile_model, ctc_loss, cudnn_report  # noqa: F401
