"""rnnbench: reproducible benchmarks of recurrent networks (SimpleRNN, LSTM, GRU, bidirectional, attention) in Keras 3."""

__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA stubs) drowns the progress display; users can still override this.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
