"""Shared fixtures: the real-data folders (or a skip saying how to provide them), and an isolated MLflow store per
test."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Where the project's development data lives beside a checkout; a user's fresh clone has none. The documented
# variables come first: RNNBENCH_DATA_DIR (the raw files, laid out as in this folder) and TFDS_DATA_DIR (a
# tensorflow-datasets data dir).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HOW_TO_PROVIDE = (f"set RNNBENCH_DATA_DIR to the datasets folder (raw files) and TFDS_DATA_DIR to a "
                  f"tensorflow-datasets data dir, or place the project's data folder at {SHARED_DATA}")


def real_data_folder(variable: str, beside_clone: Path) -> Path:
    """The folder `variable` names, else `beside_clone`; a skip naming the variables when neither is there."""
    given = os.environ.get(variable)
    if given:
        if not Path(given).is_dir():
            pytest.skip(f"real datasets not found: {variable}={given} is not a folder; {HOW_TO_PROVIDE}")
        return Path(given)
    if not beside_clone.is_dir():
        pytest.skip(f"real datasets not found: {variable} is not set and {beside_clone} is absent; {HOW_TO_PROVIDE}")
    return beside_clone


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The raw data files: RNNBENCH_DATA_DIR, else ../shared/data beside the clone."""
    return real_data_folder("RNNBENCH_DATA_DIR", SHARED_DATA)


@pytest.fixture(scope="session")
def tfds_data() -> Path:
    """The tensorflow-datasets copy: TFDS_DATA_DIR, else ../shared/data/tfds beside the clone."""
    return real_data_folder("TFDS_DATA_DIR", SHARED_DATA / "tfds")


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """A fresh SQLite MLflow store (and checkpoint folder) in a temporary folder, used through the environment."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("RNNBENCH_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    return uri
