"""Role variables from ``--var``, ``-e @FILE``, the environment and the inventory."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration_agent.catalog import Catalog
from integration_agent.errors import IntegrationError
from integration_agent.params import resolve


@pytest.fixture(scope="module")
def infra_agent():
    return Catalog().get("infra_agent")


def test_vars_file_sets_parameters_by_name_or_role_variable(infra_agent, tmp_path: Path) -> None:
    extra = tmp_path / "extra.yml"
    extra.write_text("display_name: from-file\ninfra_agent_status_server_port: 18100\nlicense_key: file-key\n")
    resolved = resolve(infra_agent, [f"@{extra}", "display_name=from-flag"], env={})
    assert resolved.extravars["infra_agent_display_name"] == "from-flag"  # later arguments win
    assert resolved.extravars["infra_agent_status_server_port"] == 18100
    assert resolved.secrets == {"infra_agent_license_key": "file-key"}  # a secret from a file is accepted


@pytest.mark.parametrize("content, message", [
    ("[1, 2]\n", "expected a mapping of parameters, got list"),
    ("a: [\n", "extra.yml:2: not valid YAML"),
    ("no_such_param: 1\n", "has no parameter 'no_such_param'"),
    ("status_server_port: eighty\n", "status_server_port"),
])
def test_a_bad_vars_file_is_named(infra_agent, tmp_path: Path, content: str, message: str) -> None:
    extra = tmp_path / "extra.yml"
    extra.write_text(content)
    with pytest.raises(IntegrationError, match=message) as caught:
        resolve(infra_agent, [f"@{extra}"], env={"NEW_RELIC_LICENSE_KEY": "k"})
    assert str(extra) in str(caught.value)


def test_a_missing_vars_file_is_named(infra_agent, tmp_path: Path) -> None:
    with pytest.raises(IntegrationError, match="nope.yml: cannot read"):
        resolve(infra_agent, [f"@{tmp_path / 'nope.yml'}"], env={})


def test_secrets_stay_off_the_command_line(infra_agent) -> None:
    with pytest.raises(IntegrationError, match="is a secret"):
        resolve(infra_agent, ["license_key=abc"], env={})


def test_the_inventory_may_provide_a_required_secret(infra_agent) -> None:
    with pytest.raises(IntegrationError, match="license_key"):
        resolve(infra_agent, [], env={})
    resolved = resolve(infra_agent, [], env={}, provided={"infra_agent_license_key"})
    assert "infra_agent_license_key" not in resolved.secrets  # the inventory's own value reaches the role
    assert "infra_agent_license_key" not in resolved.extravars


def test_checked_parameters_refuse_values_outside_their_pattern_or_directory() -> None:
    collectd = Catalog().get("collectd")
    assert resolve(collectd, ["csv_directory=/var/lib/collectd/other"]).extravars == {
        "collectd_csv_directory": "/var/lib/collectd/other"}
    with pytest.raises(IntegrationError, match=r"csv_directory.*not inside /var/lib/collectd"):
        resolve(collectd, ["csv_directory=/var/lib/collectd/../../etc/sudoers.d"])
    with pytest.raises(IntegrationError, match=r"listen_address.*does not match"):
        resolve(Catalog().get("node_exporter"), ["listen_address=:9100\nExecStartPre=/bin/sh"])


def test_a_manifest_whose_trusted_entries_leave_its_footprint_is_refused() -> None:
    from pydantic import ValidationError

    from integration_agent.catalog import Manifest

    base = Catalog().get("infra_agent").manifest.model_dump()
    with pytest.raises(ValidationError, match="secret_files: /root/key is not inside owns.paths"):
        Manifest.model_validate({**base, "secret_files": ["/root/key"]})
    base["parameters"]["version"]["default"] = "1 2"
    with pytest.raises(ValidationError, match="its default '1 2' does not match"):
        Manifest.model_validate(base)
