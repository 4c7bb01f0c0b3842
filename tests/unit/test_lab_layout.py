"""Lab layouts without a lab: releases dealt out round-robin, option checks, and the files `lab up` writes."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest
import yaml

from integration_agent.errors import LabError
from integration_agent.lab.inventory import (
    Access,
    InventoryHost,
    fleet_ansible_cfg,
    fleet_hosts,
    known_hosts,
    lab_inventory,
)
from integration_agent.lab.layout import LOGIN_USERS, OPS_PASSWORD, OPS_USER, RELEASES, Layout
from tests.conftest import run_cli

KEY = Path("/var/lib/intagent/lab/id_ed25519")
KNOWN = Path("/var/lib/intagent/lab/known_hosts")
HOSTS = [InventoryHost("lab1", "10.231.0.11", "bullseye", "http://10.231.0.1:8080/bullseye/"),
         InventoryHost("lab2", "10.231.0.12", "trixie", "http://10.231.0.1:8080/trixie/")]
TOP = "http://10.231.0.1:8080/"


def test_releases_are_dealt_out_round_robin():
    layout = Layout(releases=("bullseye", "bookworm", "trixie"))
    assert [layout.release_of(i) for i in range(1, 8)] == [
        "bullseye", "bookworm", "trixie", "bullseye", "bookworm", "trixie", "bullseye"]
    two = Layout(releases=("trixie", "bullseye"))
    assert [two.release_of(i) for i in (1, 2, 3)] == ["trixie", "bullseye", "trixie"]
    assert Layout().release_of(5) == "bookworm" and Layout().default_release == "bookworm"


def test_an_unknown_release_is_named_with_the_ones_the_lab_builds():
    with pytest.raises(LabError) as info:
        Layout(releases=("bookworm", "buster"))
    assert "'buster'" in str(info.value) and all(release in str(info.value) for release in RELEASES)
    with pytest.raises(LabError, match="at least one"):
        Layout(releases=())
    with pytest.raises(LabError, match="'admin'"):
        Layout(login_user="admin")


def test_cli_refuses_an_unknown_release_before_touching_anything(isolated_env):
    proc = run_cli("lab", "up", "--release", "bookworm", "--release", "buster", env=isolated_env, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "'buster' is not one of 'bullseye', 'bookworm', 'trixie'" in proc.stderr
    proc = run_cli("lab", "up", "--login-user", "admin", env=isolated_env, timeout=60)
    assert proc.returncode == 2 and "'admin'" in proc.stderr


def test_settings_refuse_an_unknown_default_release(isolated_env):
    proc = run_cli("lab", "up", env={**isolated_env, "INTAGENT_LAB_SUITE": "buster"}, timeout=60)
    assert proc.returncode == 3 and "lab.suite" in proc.stderr and "buster" in proc.stderr


def _proxy_command(ssh_common_args: str) -> str:
    words = shlex.split(ssh_common_args)
    return next(words[i + 1] for i, w in enumerate(words) if w == "-o" and words[i + 1].startswith("ProxyCommand="))


def test_lab_inventory_without_bastion_is_direct():
    inventory = lab_inventory(HOSTS, Access(KEY), TOP)["all"]
    assert "ProxyCommand" not in inventory["vars"]["ansible_ssh_common_args"]
    assert "intagent_lab_bastion" not in inventory["vars"]
    assert inventory["vars"]["ansible_user"] == "root"
    assert inventory["children"]["lab"]["hosts"]["lab2"] == {
        "ansible_host": "10.231.0.12", "intagent_lab_release": "trixie",
        "intagent_lab_mirror_url": "http://10.231.0.1:8080/trixie/"}


def test_lab_inventory_with_bastion_jumps_through_it_as_the_login_user():
    inventory = lab_inventory(HOSTS, Access(KEY, login_user=OPS_USER, bastion="10.231.0.10"), TOP)["all"]
    lab_vars = inventory["vars"]
    assert lab_vars["ansible_user"] == OPS_USER and lab_vars["intagent_lab_bastion"] == "10.231.0.10"
    assert not any("become" in name for name in lab_vars)  # the operator supplies the password
    assert OPS_PASSWORD not in yaml.safe_dump(inventory)
    proxy = shlex.split(_proxy_command(lab_vars["ansible_ssh_common_args"]).removeprefix("ProxyCommand="))
    assert proxy[:3] == ["ssh", "-i", str(KEY)] and proxy[-3:] == ["-W", "%h:%p", "ops@10.231.0.10"]
    assert "UserKnownHostsFile=/dev/null" in proxy
    # The rendered YAML parses back to the same thing (Ansible reads the file, not our dict).
    assert yaml.safe_load(yaml.safe_dump({"all": inventory}))["all"] == inventory


def test_fleet_hosts_name_hosts_only():
    text = yaml.safe_dump(fleet_hosts(HOSTS))
    assert "ansible_user" not in text and "private_key" not in text and "ssh" not in text
    assert yaml.safe_load(text)["all"]["children"]["lab"]["hosts"]["lab1"]["intagent_lab_release"] == "bullseye"


def test_fleet_ansible_cfg_reads_back_as_an_operator_would_write_it():
    cfg = configparser.ConfigParser(interpolation=None)  # how ansible-core reads it (values raw)
    cfg.read_string(fleet_ansible_cfg(Access(KEY, bastion="10.231.0.10", known_hosts=KNOWN)))
    assert cfg["defaults"]["remote_user"] == OPS_USER
    assert cfg["defaults"]["private_key_file"] == str(KEY)
    assert cfg["defaults"]["host_key_checking"] == "True"
    ssh_args = cfg["ssh_connection"]["ssh_args"]
    assert f"UserKnownHostsFile={KNOWN}" in shlex.split(ssh_args) and "StrictHostKeyChecking=yes" in ssh_args
    proxy = shlex.split(_proxy_command(ssh_args).removeprefix("ProxyCommand="))
    assert proxy[-3:] == ["-W", "%h:%p", "ops@10.231.0.10"] and f"UserKnownHostsFile={KNOWN}" in proxy
    text = fleet_ansible_cfg(Access(KEY, bastion="10.231.0.10", known_hosts=KNOWN))
    assert OPS_PASSWORD not in text and "become_pass" not in text and "ask_pass" not in text


def test_fleet_ansible_cfg_without_bastion_has_no_proxy():
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(fleet_ansible_cfg(Access(KEY, known_hosts=KNOWN)))
    assert "ProxyCommand" not in cfg["ssh_connection"]["ssh_args"]


def test_known_hosts_lists_each_address_once():
    assert known_hosts({"10.231.0.12": "ssh-ed25519 BBB", "10.231.0.11": "ssh-ed25519 AAA"}) == (
        "10.231.0.11 ssh-ed25519 AAA\n10.231.0.12 ssh-ed25519 BBB\n")


def test_the_cli_choices_are_the_labs_lists():
    from integration_agent.cli.lab import LoginUser, Release

    assert [r.value for r in Release] == list(RELEASES)
    assert [u.value for u in LoginUser] == list(LOGIN_USERS)
