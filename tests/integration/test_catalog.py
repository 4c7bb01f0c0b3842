"""The catalog: the project's integrations, a plugin package's, and the contract every one must meet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from integration_agent.catalog import ENTRY_POINTS, Catalog
from integration_agent.errors import IntegrationError
from integration_agent.executor import ansible_env
from tests.conftest import REPO, run_cli

PLUGIN = REPO / "tests" / "fixtures" / "plugin"


def plugin_env(base: dict[str, str]) -> dict[str, str]:
    return {**base, "PYTHONPATH": os.pathsep.join(filter(None, [str(PLUGIN), os.environ.get("PYTHONPATH")]))}


def test_plugin_package_adds_an_integration(isolated_env):
    proc = run_cli("list", "--json", env=plugin_env(isolated_env))
    assert proc.returncode == 0, proc.stderr
    assert '"example_motd"' in proc.stdout and '"intagent-example"' in proc.stdout
    shown = run_cli("show", "example_motd", env=plugin_env(isolated_env))
    assert "EXAMPLE_MOTD_TOKEN" in shown.stdout and "motd(5)" in shown.stdout


def test_integrations_path_setting_adds_a_folder_of_integrations(isolated_env, tmp_path):
    """``INTAGENT_INTEGRATIONS_PATH`` is a setting (integrations_path) that config, list and show accept."""
    folder = PLUGIN / "intagent_example" / "integrations"  # laid out like the project, no package needed
    env = {**isolated_env, "INTAGENT_INTEGRATIONS_PATH": f"{tmp_path}{os.pathsep}{folder}"}
    config = run_cli("config", "--no-ansible", env=env, cwd=tmp_path)
    assert config.returncode == 0, config.stderr
    assert yaml.safe_load(config.stdout)["integrations_path"] == [str(tmp_path), str(folder)]
    listed = run_cli("list", "--json", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    found = {i["name"]: i for i in json.loads(listed.stdout)}
    assert found["example_motd"]["origin"] == str(folder) and found["node_exporter"]["origin"] == "project"
    shown = run_cli("show", "example_motd", env=env, cwd=tmp_path)
    assert shown.returncode == 0 and "EXAMPLE_MOTD_TOKEN" in shown.stdout, shown.stderr
    assert "example_motd" not in run_cli("list", "--json", env=isolated_env, cwd=tmp_path).stdout


def test_a_catalog_made_without_settings_searches_no_extra_folder(monkeypatch):
    monkeypatch.setenv("INTAGENT_INTEGRATIONS_PATH", str(PLUGIN / "intagent_example" / "integrations"))
    assert "example_motd" not in Catalog().integrations
    assert "example_motd" in Catalog(paths=[PLUGIN / "intagent_example" / "integrations"]).integrations


def test_missing_required_parameter_of_a_plugin_integration(tmp_path, isolated_env):
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n    h1:\n      ansible_connection: local\n")
    proc = run_cli("install", "example_motd", "-i", str(inv), "--yes", env=plugin_env(isolated_env))
    assert proc.returncode == 5
    assert "missing required parameter 'message'" in proc.stderr
    proc = run_cli("install", "example_motd", "-i", str(inv), "--var", "token=abc", env=plugin_env(isolated_env))
    assert proc.returncode == 5 and "is a secret" in proc.stderr and "EXAMPLE_MOTD_TOKEN" in proc.stderr


def test_unknown_name_lists_known(tmp_path):
    with pytest.raises(IntegrationError, match=r"known: .*node_exporter"):
        Catalog().get("nope")


def test_manifest_errors_name_file_and_key(tmp_path):
    bad = tmp_path / "knowledge" / "broken_one"
    bad.mkdir(parents=True)
    (bad / "integration.yml").write_text("name: broken_one\ndescription: x\nversion: '1'\nplatforms: []\n"
                                         "owns: {ports: [nine]}\nsources: []\n")
    with pytest.raises(IntegrationError) as info:
        _ = Catalog([(tmp_path, "test")]).integrations
    assert "integration.yml" in str(info.value) and "owns.ports" in str(info.value)


ALL = sorted(Catalog().integrations.values(), key=lambda i: i.name)
CURATED = [i for i in ALL if i.has_role]


@pytest.mark.parametrize("integration", CURATED, ids=[i.name for i in CURATED])
def test_contract(integration):
    """Entry points, argument specs matching the manifest, molecule scenario, lint-clean wrapper."""
    role = integration.role_dir
    for entry in ENTRY_POINTS:
        assert (role / "tasks" / f"{entry}.yml").is_file(), f"missing entry point {entry}"
        assert entry in integration.argument_specs, f"no argument spec for {entry}"
    main_spec = integration.argument_specs["main"]["options"]
    for name, param in integration.manifest.parameters.items():
        var = integration.role_var(name)
        assert var in main_spec, f"manifest parameter {name} has no {var} in the main argument spec"
        spec = main_spec[var]
        assert spec.get("type", "str") == param.type, var
        assert bool(spec.get("required", False)) == param.required, var
        assert not param.secret or spec.get("no_log") is True, f"{var} is a secret: its spec needs no_log"
        if not param.required and param.default is not None:
            defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
            assert spec.get("default") == param.default == defaults.get(var), var
    assert (integration.root / "molecule" / integration.name / "molecule.yml").is_file()
    assert integration.manifest.owns.packages or integration.manifest.owns.paths


@pytest.mark.parametrize("integration", CURATED, ids=[i.name for i in CURATED])
def test_role_passes_ansible_lint_production(integration, tmp_path):
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-lint"), "--profile", "production", "--offline",
                           "--nocolor", str(integration.role_dir)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, **ansible_env()})
    assert proc.returncode == 0, proc.stdout + proc.stderr
