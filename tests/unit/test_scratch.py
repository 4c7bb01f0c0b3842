"""Where a job's private files go: /dev/shm, else the folder the user accepted, else (with secrets) nowhere.

``memory`` stands in for /dev/shm: a folder under tmp_path, or a missing one for a machine without it."""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

import pytest

from integration_agent.errors import ConfigError
from integration_agent.scratch import MEMORY_FS, Scratch


@pytest.fixture
def memory(tmp_path: Path) -> Path:
    (tmp_path / "shm").mkdir()
    return tmp_path / "shm"


@pytest.fixture
def accepted(tmp_path: Path) -> Path:
    (tmp_path / "accepted").mkdir()
    return tmp_path / "accepted"


def test_the_memory_file_system_comes_first(memory, accepted):
    assert Scratch(memory=memory).folder(secrets=True) == memory
    assert Scratch(secrets_dir=accepted, memory=memory).folder(secrets=True) == memory
    assert Scratch().memory == MEMORY_FS == Path("/dev/shm")


@pytest.mark.parametrize("secrets", [True, False])
def test_without_it_the_accepted_folder_is_used(tmp_path, accepted, secrets):
    assert Scratch(secrets_dir=accepted, memory=tmp_path / "no-shm").folder(secrets=secrets) == accepted


def test_without_either_a_job_with_secrets_is_refused_naming_the_setting(tmp_path):
    with pytest.raises(ConfigError) as info:
        Scratch(memory=tmp_path / "no-shm").folder(secrets=True)
    message = str(info.value)
    assert info.value.exit_code == 3
    assert str(tmp_path / "no-shm") in message and tempfile.gettempdir() in message
    assert "secrets_dir" in message and "INTAGENT_SECRETS_DIR" in message


def test_without_either_a_job_without_secrets_uses_the_system_temporary_folder(tmp_path):
    assert Scratch(memory=tmp_path / "no-shm").folder(secrets=False) is None


def test_a_memory_path_that_is_no_directory_counts_as_missing(tmp_path):
    (tmp_path / "shm").write_text("")
    with pytest.raises(ConfigError):
        Scratch(memory=tmp_path / "shm").folder(secrets=True)


def test_private_dirs_are_new_and_0700(memory):
    first = Scratch(memory=memory).private_dir("intagent-run-", secrets=True)
    second = Scratch(memory=memory).private_dir("intagent-run-", secrets=True)
    assert first.parent == second.parent == memory and first != second and first.name.startswith("intagent-run-")
    assert stat.S_IMODE(first.stat().st_mode) == 0o700
