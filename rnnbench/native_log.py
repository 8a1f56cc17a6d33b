"""Keeps TensorFlow's native start-up chatter off the `rnnbench` command's stderr, and nothing else.

TensorFlow 2.19 and later log from C++ through absl before absl's logging is initialised, so `TF_CPP_MIN_LOG_LEVEL` no
longer silences them (tensorflow/tensorflow#100442): every command printed the oneDNN and "no CUDA drivers" notices
twice, and CPU machines also got `cuInit` and `NodeDef mentions attribute` errors that are not the user's concern.
The command therefore routes file descriptor 2 through a pipe whose reader drops exactly the lines matching `NOISE`
and passes every other byte on, in order. Python warnings, tracebacks and real TensorFlow errors still come through.
`RNNBENCH_TF_LOGS=1` turns the filter off, to see everything.
"""
from __future__ import annotations

import atexit
import os
import re
import sys
import threading

# Each pattern is a notice that TensorFlow prints on every start or first op of a CPU-only machine.
NOISE = tuple(re.compile(pattern) for pattern in (
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"oneDNN custom operations are on",
    r"cudart_stub\.cc:\d+\] Could not find cuda drivers",
    r"failed call to cuInit",
    r"Unable to register cu(FFT|DNN|BLAS) factory",
    r"computation placer already registered",
    r"NodeDef mentions attribute .* which is not in the op definition",
    r"TF-TRT Warning: Could not find TensorRT",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"To enable the following instructions: .* in other operations, rebuild TensorFlow",
    r"Could not find cuda drivers on your machine, GPU will not be used",
))


def is_noise(line: str) -> bool:
    return any(pattern.search(line) for pattern in NOISE)


def filter_native_stderr() -> bool:
    """Installs the filter for the rest of the process; returns False when it is off or cannot be installed (stderr
    is not a real file descriptor, e.g. under a test's capture)."""
    if os.environ.get("RNNBENCH_TF_LOGS", "").lower() in ("1", "true", "yes"):
        return False
    try:
        sys.stderr.flush()
        original = os.dup(2)
    except (OSError, ValueError):
        return False
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            pending = b""
            while True:
                chunk = pipe.read(65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if not is_noise(line.decode("utf-8", "replace")):
                        os.write(original, line + b"\n")
            if pending and not is_noise(pending.decode("utf-8", "replace")):
                os.write(original, pending)

    reader = threading.Thread(target=pump, name="rnnbench-stderr-filter", daemon=True)
    reader.start()

    def restore():
        # Closing the pipe's last write end lets the reader pass on what is left before the process exits.
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(original, 2)
        reader.join(timeout=5)

    atexit.register(restore)
    return True
