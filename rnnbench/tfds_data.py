"""tensorflow-datasets access shared by the tasks: a prepared builder from TFDS_DATA_DIR, or a DataError saying how
to get the data."""
from __future__ import annotations

import os

from rnnbench.errors import DataError


def prepared_builder(name: str, download: bool, remedy: str):
    """The tfds builder of `name` with its data ready.

    TFDS_DATA_DIR is read at call time (tfds itself reads it once, at import), so a value set later in the same
    process counts. When the data is not there and cannot be downloaded, the error names `remedy`.
    """
    import tensorflow_datasets as tfds

    data_dir = os.environ.get("TFDS_DATA_DIR") or None
    where = data_dir or "tfds's default folder ~/tensorflow_datasets (TFDS_DATA_DIR is not set)"
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        if not download:
            raise DataError(f"tfds dataset {name} is not in {where} and task.download is false; {remedy}")
        try:
            builder.download_and_prepare()
        except Exception as error:  # any failure to fetch or build means the same thing to the user
            raise DataError(
                f"tfds dataset {name} is not in {where} and could not be downloaded "
                f"({type(error).__name__}: {str(error)[:300]}); {remedy}"
            ) from None
    return builder
