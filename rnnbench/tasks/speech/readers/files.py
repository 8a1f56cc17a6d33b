"""File access shared by the speech readers: text lists that must be UTF-8, and the wav files of a folder; both fail
with the file and the option to fix."""
from __future__ import annotations

from pathlib import Path

from rnnbench.errors import DataError


def read_text(path: Path, what: str, option: str = "task.data_dir") -> str:
    if not path.is_file():
        raise DataError(f"{path}: {what} not found; check {option}")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte {error.start}); re-save it as UTF-8") from None


def wav_files(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found; set task.data_dir to the folder of {what}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav" and p.is_file())
