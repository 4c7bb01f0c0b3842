import pytest

from integration_agent.errors import LabError
from integration_agent.lab.system import REQUIRED_TOOLS, preflight
from tests.conftest import run_cli


def test_not_root_is_refused_with_a_hint():
    with pytest.raises(LabError, match="needs root") as info:
        preflight(euid=1000, which=lambda tool: f"/usr/bin/{tool}")
    assert "sudo" in str(info.value)


def test_missing_tools_are_named_with_the_apt_line():
    present = {"ip", "mount", "umount", "chroot", "ssh", "ssh-keygen"}
    with pytest.raises(LabError) as info:
        preflight(euid=0, which=lambda tool: f"/usr/bin/{tool}" if tool in present else None)
    message = str(info.value)
    assert "systemd-nspawn" in message and "debootstrap" in message and "dpkg-scanpackages" in message
    assert "apt-get install -y debootstrap dpkg-dev systemd-container" in message


def test_every_tool_maps_to_a_package():
    assert all(REQUIRED_TOOLS.values())


def test_cli_lab_up_without_tools_fails_at_once(tmp_path, isolated_env):
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = run_cli("lab", "up", env={**isolated_env, "PATH": str(empty)}, timeout=60)
    assert proc.returncode == 6, proc.stderr
    assert "missing tools for the lab" in proc.stderr and "apt-get install -y" in proc.stderr


def test_a_base_image_is_never_built_unverified(tmp_path):
    from integration_agent.lab.base import BaseImage

    image = BaseImage(tmp_path, "trixie", "http://deb.debian.org/debian", keyring=tmp_path / "no-keyring.gpg")
    with pytest.raises(LabError) as info:
        image.ensure()
    assert "no Debian archive keyring" in str(info.value) and "trixie" in str(info.value)
    assert "apt-get install -y debian-archive-keyring" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # debootstrap never ran


def test_inotify_limits_are_raised_for_many_hosts_and_never_lowered(tmp_path):
    from integration_agent.lab.system import raise_inotify_limits

    (tmp_path / "max_user_instances").write_text("128\n")
    (tmp_path / "max_user_watches").write_text("1000000\n")
    raised = raise_inotify_limits(50, proc=str(tmp_path))
    assert raised == {"max_user_instances": 128 + 16 * 50}
    assert (tmp_path / "max_user_instances").read_text() == str(128 + 16 * 50)
    assert (tmp_path / "max_user_watches").read_text() == "1000000\n"  # already enough: untouched
    assert raise_inotify_limits(3, proc=str(tmp_path)) == {}
