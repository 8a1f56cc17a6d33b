"""No hidden downloads: the tfds-backed tasks (imdb, char_lm, speech digits) without their prepared data fail at once
with the message (TFDS_DATA_DIR, the local-file alternatives, how to allow a download), touch no network and create
no folder; they download only when `task.download=true` asks, and a download that fails leaves nothing behind."""
from __future__ import annotations

import dataclasses
import socket
import time
from pathlib import Path

import pytest
import tensorflow_datasets as tfds

from rnnbench import registry
from rnnbench.errors import DataError

# task -> (options that make it read tfds, the tfds dataset, the local alternative its message must name)
TFDS_TASKS = {
    "imdb": ({}, "imdb_reviews", "task.data_file"),
    "char_lm": ({}, "tiny_shakespeare", "task.data_file"),
    "speech": ({"dataset": "digits"}, "spoken_digit", "task.data_dir"),
}
FAILS_WITHIN_S = 10.0  # "at once": reading the folder, not the minutes of tfds's retries offline


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network (any connection attempt is recorded and refused), and a home folder of its own, so that tfds's
    default ~/tensorflow_datasets is inside the test's folder."""
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return attempts


def fake_failing_download(created: list):
    """A download_and_prepare that, like tfds's offline, makes its folders and a partial file before it fails."""
    def download_and_prepare(self, *args, **kwargs):
        variant = Path(self.data_dir)
        variant.parent.mkdir(parents=True, exist_ok=True)
        downloads = Path(self.data_dir_root) / "downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        (downloads / "partial.tmp").write_bytes(b"half of it")
        created.extend([variant.parent, downloads])
        raise ConnectionError("Failed to resolve the dataset's host")
    return download_and_prepare


@pytest.mark.parametrize("task", sorted(TFDS_TASKS))
@pytest.mark.parametrize("where", ["empty", "nonexistent"])
def test_missing_tfds_data_fails_at_once_naming_the_remedies_and_creates_nothing(task, where, tmp_path, offline,
                                                                                  monkeypatch):
    options, dataset, local_option = TFDS_TASKS[task]
    data_dir = tmp_path / "tfds" if where == "empty" else tmp_path / "no" / "such" / "tfds"
    if where == "empty":
        data_dir.mkdir()
    monkeypatch.setenv("TFDS_DATA_DIR", str(data_dir))
    called = []
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", lambda *a, **k: called.append(a))
    load = registry.get_task(task)  # importing the tasks (TensorFlow, Keras) is not what is timed
    before = files_under(tmp_path)
    started = time.monotonic()
    with pytest.raises(DataError) as caught:
        load(**options)
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert f"tfds dataset {dataset} is not in {data_dir} (TFDS_DATA_DIR) and task.download is false" in message
    assert local_option in message and "--set task.download=true" in message
    assert elapsed < FAILS_WITHIN_S, f"took {elapsed:.1f} s to fail"
    assert not called and not offline  # neither a download nor any connection was tried
    assert files_under(tmp_path) == before  # no folder made, not even the nonexistent TFDS_DATA_DIR


@pytest.mark.parametrize("task", sorted(TFDS_TASKS))
def test_without_tfds_data_dir_the_default_folder_is_named_and_not_created(task, offline, monkeypatch):
    options, dataset, local_option = TFDS_TASKS[task]
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    home = Path.home()
    with pytest.raises(DataError) as caught:
        registry.get_task(task)(**options)
    message = str(caught.value)
    assert "~/tensorflow_datasets (TFDS_DATA_DIR is not set)" in message and local_option in message
    assert not (home / "tensorflow_datasets").exists() and not offline


def test_an_empty_tfds_data_dir_is_not_the_current_folder(tmp_path, offline, monkeypatch):
    """tfds takes TFDS_DATA_DIR="" as the current folder (and would download there); it means unset here."""
    monkeypatch.setenv("TFDS_DATA_DIR", "")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="TFDS_DATA_DIR is not set"):
        registry.get_task("char_lm")()
    assert files_under(tmp_path) == ["home"]


@pytest.mark.parametrize("task", sorted(TFDS_TASKS))
def test_download_is_off_by_default_and_says_where_it_goes(task):
    field = {f.name: f for f in dataclasses.fields(registry.get_task_entry(task).options)}["download"]
    assert field.default is False
    assert "TFDS_DATA_DIR" in field.metadata["help"]


@pytest.mark.parametrize("task", sorted(TFDS_TASKS))
def test_a_failed_download_into_a_new_folder_removes_what_it_made(task, tmp_path, offline, monkeypatch):
    options, dataset, local_option = TFDS_TASKS[task]
    data_dir = tmp_path / "new" / "tfds"
    monkeypatch.setenv("TFDS_DATA_DIR", str(data_dir))
    created = []
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", fake_failing_download(created))
    with pytest.raises(DataError, match=f"{dataset} is not in .* could not be downloaded .*ConnectionError") as caught:
        registry.get_task(task)(download=True, **options)
    assert local_option in str(caught.value)
    assert created and not (tmp_path / "new").exists()  # the folders were made, and removed again


def test_a_failed_download_keeps_what_was_there_before(tmp_path, offline, monkeypatch):
    data_dir = tmp_path / "tfds"
    (data_dir / "downloads").mkdir(parents=True)
    (data_dir / "downloads" / "earlier.zip").write_bytes(b"another dataset's download")
    (data_dir / "mnist" / "3.0.1").mkdir(parents=True)
    before = files_under(data_dir)
    monkeypatch.setenv("TFDS_DATA_DIR", str(data_dir))
    created = []
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", fake_failing_download(created))
    with pytest.raises(DataError, match="could not be downloaded"):
        registry.get_task("char_lm")(download=True)
    assert created and files_under(data_dir) == sorted(before + ["downloads/partial.tmp"])


# -- the real-data fixtures find the data where the documented variables say ---------------------------------------

@pytest.mark.parametrize("variable", ["RNNBENCH_DATA_DIR", "TFDS_DATA_DIR"])
def test_real_data_fixtures_honour_the_variables(variable, tmp_path, monkeypatch):
    from conftest import real_data_folder

    beside_clone = tmp_path / "shared" / "data"
    monkeypatch.setenv(variable, str(tmp_path))
    assert real_data_folder(variable, beside_clone) == tmp_path  # the variable wins, even with nothing beside
    monkeypatch.setenv(variable, str(tmp_path / "absent"))
    with pytest.raises(pytest.skip.Exception, match=f"{variable}=.*absent is not a folder"):
        real_data_folder(variable, beside_clone)
    monkeypatch.delenv(variable)
    with pytest.raises(pytest.skip.Exception, match=f"{variable} is not set .*RNNBENCH_DATA_DIR.*TFDS_DATA_DIR"):
        real_data_folder(variable, beside_clone)
    beside_clone.mkdir(parents=True)
    assert real_data_folder(variable, beside_clone) == beside_clone  # the fallback: ../shared/data beside the clone
