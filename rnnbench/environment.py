"""What a run needs to be repeated: software versions, hardware, and the exact source (git commit, dirty or not)."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The vector extensions oneDNN and XLA pick their CPU kernels by: the same versions on another of these sets can
# give other last digits (two VMs that both call themselves "AMD EPYC" may differ here).
_ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def _cpu_identity() -> tuple[str, str]:
    """("family F model M stepping S", the vector extensions of _ISA_FLAGS present) from /proc/cpuinfo."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return "unknown", "unknown"
    flags = set(fields.get("flags", "").split())
    model = " ".join(f"{k} {fields[k]}" for k in ("cpu family", "model", "stepping") if k in fields) or "unknown"
    return model, ",".join(f for f in _ISA_FLAGS if f in flags) or "none"


def _git(*args: str, cwd: Path | None = None) -> str:
    try:
        return subprocess.run(["git", *args], cwd=cwd or Path(__file__).resolve().parent, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# Generated outputs: a clone that holds a fresh, not yet committed report still runs exactly the committed code.
GENERATED_FOLDERS = ("results", "reports")


def source_dirty(cwd: Path | None = None) -> bool:
    """Whether tracked files other than the generated reports differ from the commit (untracked files are ignored)."""
    excluded = [f":(top,exclude){folder}" for folder in GENERATED_FOLDERS]
    return bool(_git("status", "--porcelain", "--untracked-files=no", "--", ":/", *excluded, cwd=cwd))


def describe() -> dict:
    """A flat dict of environment facts, logged with every run."""
    import keras
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    gpus = tf.config.list_physical_devices("GPU")
    gpu_names = []
    for gpu in gpus:
        try:
            gpu_names.append(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name))
        except (RuntimeError, ValueError):
            gpu_names.append(gpu.name)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "cuda": build.get("cuda_version", "none") if gpus else "none",
        "cudnn": build.get("cudnn_version", "none") if gpus else "none",
        "device": ", ".join(gpu_names) if gpu_names else f"CPU: {_cpu_name()}",
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_identity()[0],
        "cpu_isa": _cpu_identity()[1],
        "git_commit": _git("rev-parse", "HEAD") or "unknown",
        "git_dirty": source_dirty() if _git("rev-parse", "HEAD") else "unknown",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
