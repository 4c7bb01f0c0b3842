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
    with pytest.raises(IntegrationError, match=r"nope.yml: cannot read"):
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
    with pytest.raises(ValidationError, match=r"secret_files: /root/key is not inside owns.paths"):
        Manifest.model_validate({**base, "secret_files": ["/root/key"]})
    base["parameters"]["version"]["default"] = "1 2"
    with pytest.raises(ValidationError, match="its default '1 2' does not match"):
        Manifest.model_validate(base)


# -- infra_agent's proxy: a URL that may hold a password is a secret ---------------------------------

PROXY = "http://ops:s3cret@proxy.example:3128"


def test_the_proxy_is_never_taken_from_the_command_line(infra_agent) -> None:
    with pytest.raises(IntegrationError, match="is a secret") as caught:
        resolve(infra_agent, [f"proxy={PROXY}"], env={"NEW_RELIC_LICENSE_KEY": "k"})
    assert "NEW_RELIC_PROXY" in str(caught.value) and "s3cret" not in str(caught.value)


def test_the_proxy_comes_from_its_variable_or_a_file_and_is_never_recorded(infra_agent, tmp_path: Path) -> None:
    resolved = resolve(infra_agent, [], env={"NEW_RELIC_LICENSE_KEY": "k", "NEW_RELIC_PROXY": PROXY})
    assert resolved.secrets["infra_agent_proxy"] == PROXY and "infra_agent_proxy" not in resolved.extravars
    assert resolved.recorded()["infra_agent_proxy"] == "********"
    extra = tmp_path / "proxy.yml"
    extra.write_text(f"proxy: {PROXY}\n")
    assert resolve(infra_agent, [f"@{extra}"], env={"NEW_RELIC_LICENSE_KEY": "k"}).secrets["infra_agent_proxy"] == PROXY
    unset = resolve(infra_agent, [], env={"NEW_RELIC_LICENSE_KEY": "k"})
    assert "infra_agent_proxy" not in unset.secrets  # the role's default: leave the file's proxy alone


def test_only_a_required_secret_is_prompted_for(infra_agent) -> None:
    asked: list[str] = []
    resolved = resolve(infra_agent, [], env={}, prompt=lambda name, _param: asked.append(name) or "typed")
    assert asked == ["license_key"] and "infra_agent_proxy" not in resolved.secrets


def test_a_secret_outside_its_pattern_is_refused_without_showing_it(infra_agent) -> None:
    with pytest.raises(IntegrationError, match="NEW_RELIC_PROXY: secret parameter 'proxy' does not match") as caught:
        resolve(infra_agent, [], env={"NEW_RELIC_LICENSE_KEY": "k", "NEW_RELIC_PROXY": "http://x:pa ss@p:1"})
    assert "pa ss" not in str(caught.value)
