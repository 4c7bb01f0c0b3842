import pytest

from integration_agent.errors import InventoryError
from integration_agent.inventory import resolve_hosts
from tests.conftest import run_cli


def test_hosts_and_limit(tmp_path):
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  children:\n    web:\n      hosts:\n        a: {}\n        b: {}\n"
                   "    db:\n      hosts:\n        c: {}\n")
    assert resolve_hosts(inv) == ["a", "b", "c"]
    assert resolve_hosts(inv, "web") == ["a", "b"]


def test_broken_inventory_names_file_and_line(tmp_path):
    inv = tmp_path / "hosts.yml"
    inv.write_text("all: [\n")
    with pytest.raises(InventoryError, match=r"hosts\.yml:2"):
        resolve_hosts(inv)


def test_limit_matching_nothing_is_an_error(tmp_path):
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n    a: {}\n")
    with pytest.raises(InventoryError, match="no hosts matched --limit 'nothere'"):
        resolve_hosts(inv, "nothere")


def test_missing_and_empty_inventories(tmp_path):
    with pytest.raises(InventoryError, match="not found"):
        resolve_hosts(tmp_path / "none.yml")
    empty = tmp_path / "empty.yml"
    empty.write_text("all:\n  hosts: {}\n")
    with pytest.raises(InventoryError, match="no hosts matched"):
        resolve_hosts(empty)


def test_cli_ping_with_broken_inventory_starts_no_run(tmp_path, isolated_env):
    inv = tmp_path / "hosts.yml"
    inv.write_text("all: [\n")
    proc = run_cli("ping", "--inventory", str(inv), env=isolated_env)
    assert proc.returncode == 4
    assert not (tmp_path / "state" / "intagent" / "runs").exists()
