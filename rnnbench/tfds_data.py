"""tensorflow-datasets access shared by the tasks: a prepared builder from TFDS_DATA_DIR, or a DataError saying how
to get the data.

Nothing is downloaded unless the task's `download` option asks for it: without the prepared data the loader fails at
once (tfds's own download, offline, retries for minutes before it gives up), and creates no folder. A download that
was asked for but failed removes the folders it created, so a later look finds the data absent, not half there.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

from rnnbench.errors import DataError

# tfds's own default, used when TFDS_DATA_DIR is unset or empty (tfds itself would take an empty value as the current
# folder, and download there).
DEFAULT_DATA_DIR = os.path.join("~", "tensorflow_datasets")


def tfds_data_dir() -> tuple[str, str]:
    """(the tfds data dir to use, how a message names it); TFDS_DATA_DIR read now, not when tfds was imported."""
    given = os.environ.get("TFDS_DATA_DIR")
    if given:
        return given, f"{given} (TFDS_DATA_DIR)"
    return os.path.expanduser(DEFAULT_DATA_DIR), \
        f"tfds's default folder {DEFAULT_DATA_DIR} (TFDS_DATA_DIR is not set)"


def prepared_builder(name: str, download: bool, remedy: str):
    """The tfds builder of `name` with its data ready.

    Without the prepared data and with `download` false, a DataError at once naming `remedy` and how to allow the
    download; with `download` true, tfds downloads and prepares it into the data dir.
    """
    import tensorflow_datasets as tfds

    data_dir, where = tfds_data_dir()
    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
        return builder
    allow = f"or allow the download into {where} with --set task.download=true (needs internet access)"
    if not download:
        raise DataError(f"tfds dataset {name} is not in {where} and task.download is false; {remedy}, {allow}")
    created = [folder for folder in (_outermost_missing(Path(builder.data_dir)),
                                     _outermost_missing(Path(data_dir) / "downloads")) if folder is not None]
    prepared = False
    try:
        builder.download_and_prepare()
        prepared = True
    except Exception as error:  # any failure to fetch or build means the same thing to the user
        raise DataError(
            f"tfds dataset {name} is not in {where} and could not be downloaded "
            f"({type(error).__name__}: {str(error)[:300]}); {remedy}"
        ) from None
    finally:
        if not prepared:  # also when interrupted: a half-made folder would look like data that is there
            for folder in created:
                shutil.rmtree(folder, ignore_errors=True)
    return builder


def _outermost_missing(path: Path) -> Optional[Path]:
    """The outermost of `path` and its parents that does not exist yet (what creating `path` would create), or None."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing
