"""The environment a run records: a clone whose only changes are generated reports still counts as clean source."""

import subprocess

from rnnbench import environment


def _git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


def test_only_changed_source_makes_a_clone_dirty(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "code.py").write_text("x = 1\n")
    for folder in environment.GENERATED_FOLDERS:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "summary.csv").write_text("a\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "start")
    # Asked from a subfolder, as the installed package asks from its own folder.
    assert environment.source_dirty(tmp_path / "pkg") is False

    for folder in environment.GENERATED_FOLDERS:
        (tmp_path / folder / "summary.csv").write_text("b\n")
    (tmp_path / "notes.txt").write_text("untracked\n")
    assert environment.source_dirty(tmp_path / "pkg") is False

    (tmp_path / "pkg" / "code.py").write_text("x = 2\n")
    assert environment.source_dirty(tmp_path / "pkg") is True
