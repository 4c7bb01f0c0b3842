"""Discovery rules, recommendations and the order of install --recommended, on made-up hosts and catalogs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from integration_agent import discovery
from integration_agent.catalog import Catalog, Discovery, Match
from integration_agent.discovery import DiscoveryReport, HostDiscovery, HostFacts, Installed
from integration_agent.errors import IntegrationError
from integration_agent.status import HostStatus


def manifest(name: str, *, discovery_rules: dict | None = None, requires: list[str] | None = None,
             packages: list[str] | None = None) -> dict:
    data = {"name": name, "description": name, "version": "1.0.0",
            "platforms": [{"family": "debian", "distributions": ["Debian"], "versions": ["12"]}],
            "owns": {"packages": packages or [name.replace("_", "-")], "services": [name]},
            "sources": [{"title": "t", "url": "https://example.org"}]}
    if discovery_rules is not None:
        data["discovery"] = discovery_rules
    if requires is not None:
        data["requires"] = requires
    return data


def catalog_of(tmp_path: Path, *manifests: dict, roles: bool = True) -> Catalog:
    for data in manifests:
        folder = tmp_path / "knowledge" / data["name"]
        folder.mkdir(parents=True)
        (folder / "integration.yml").write_text(yaml.safe_dump(data))
        if roles:
            tasks = tmp_path / "roles" / data["name"] / "tasks"
            tasks.mkdir(parents=True)
            (tasks / "main.yml").write_text("---\n[]\n")
    return Catalog([(tmp_path, "test")])


WEB = HostFacts(os_family="Debian", processes=frozenset({"nginx", "sshd"}), ports=frozenset({22, 80}),
                packages={"nginx": "1.22.1-9"}, active_units=frozenset({"nginx.service", "ssh.service"}))


@pytest.mark.parametrize("rule, evidence", [
    ({"process": "nginx"}, "process nginx is running"),
    ({"package": "nginx"}, "package nginx 1.22.1-9 is installed"),
    ({"port": 80}, "TCP port 80 is listening"),
    ({"unit": "nginx"}, "unit nginx.service is active"),
    ({"unit": "nginx.service"}, "unit nginx.service is active"),
    ({"os_family": "debian"}, "os_family is Debian"),
    ({"process": "mariadbd"}, None),
    ({"port": 3306}, None),
    ({"unit": "redis-server"}, None),
    ({"os_family": "RedHat"}, None),
])
def test_each_kind_of_rule_matches_what_the_host_shows(rule, evidence):
    assert WEB.match(Match(**rule)) == evidence


@pytest.mark.parametrize("rules", [{}, {"process": "a", "port": 1}, {"port": 0}, {"process": "a b"},
                                   {"unit": "x;rm"}, {"service": "nginx"}])
def test_a_rule_names_exactly_one_valid_thing(rules):
    with pytest.raises(ValueError):
        Match(**rules)


def test_any_needs_one_match_and_all_needs_every_one():
    either = Discovery(any=[Match(process="mariadbd"), Match(port=80)])
    assert WEB.relevant(either) == ["TCP port 80 is listening"]
    both = Discovery(any=[Match(process="nginx")], all=[Match(package="newrelic-infra")])
    assert WEB.relevant(both) is None
    only_all = Discovery(all=[Match(os_family="Debian"), Match(port=22)])
    assert WEB.relevant(only_all) == ["os_family is Debian", "TCP port 22 is listening"]
    assert WEB.relevant(Discovery()) is None  # no rule: installed by name only


def test_installed_is_seen_from_the_footprint(tmp_path):
    found = catalog_of(tmp_path, manifest("nginx_exporter", packages=["prometheus-nginx-exporter"]))
    owns = found.get("nginx_exporter").manifest.owns
    assert WEB.installed(owns) == []
    facts = HostFacts(packages={"prometheus-nginx-exporter": "0.11.0"},
                      unit_files=frozenset({"nginx_exporter.service"}))
    assert facts.installed(owns) == ["package prometheus-nginx-exporter 0.11.0", "unit file nginx_exporter.service"]


def test_requires_must_name_known_integrations_without_a_cycle(tmp_path):
    with pytest.raises(IntegrationError, match=r"aa/integration.yml: requires: unknown integration 'nope'"):
        _ = catalog_of(tmp_path / "1", manifest("aa", requires=["nope"])).integrations
    with pytest.raises(IntegrationError, match=r"requires: a cycle \((aa -> bb -> aa|bb -> aa -> bb)\)"):
        _ = catalog_of(tmp_path / "2", manifest("aa", requires=["bb"]), manifest("bb", requires=["aa"])).integrations
    with pytest.raises(IntegrationError, match="cannot require itself"):
        _ = catalog_of(tmp_path / "3", manifest("aa", requires=["aa"])).integrations


def test_install_order_puts_requirements_first(tmp_path):
    found = catalog_of(tmp_path, manifest("agent"), manifest("zz_on_host", requires=["agent"]),
                       manifest("aa_plugin", requires=["zz_on_host"]), manifest("solo"))
    assert found.install_order(["aa_plugin", "solo", "zz_on_host", "agent"]) == [
        "agent", "zz_on_host", "aa_plugin", "solo"]
    # A requirement nobody asked for is not added: it is installed, or the dependent is blocked.
    assert found.install_order(["aa_plugin"]) == ["aa_plugin"]


def discovered(facts: HostFacts, installed: list[Installed] = ()) -> HostDiscovery:  # type: ignore[assignment]
    from dataclasses import asdict

    data = {k: v for k, v in asdict(facts).items()}
    evidence = {"os_family": data["os_family"], "processes": sorted(data["processes"]), "ports": sorted(data["ports"]),
                "packages": dict(data["packages"]), "active_units": sorted(data["active_units"]),
                "unit_files": sorted(data["unit_files"])}
    return HostDiscovery("web1", "discovered", facts=evidence, installed=list(installed))


@pytest.fixture
def fleet_catalog(tmp_path):
    return catalog_of(
        tmp_path,
        manifest("node_exporter", discovery_rules={"any": [{"os_family": "Debian"}]}),
        manifest("nginx_exporter", discovery_rules={"any": [{"process": "nginx"}, {"unit": "nginx"}]}),
        manifest("mysqld_exporter", discovery_rules={"any": [{"process": "mariadbd"}]}),
        manifest("agent", packages=["newrelic-infra"]),
        manifest("nri_nginx", discovery_rules={"any": [{"process": "nginx"}], "all": [{"package": "newrelic-infra"}]},
                 requires=["agent"]),
        manifest("lonely", discovery_rules={"any": [{"process": "nginx"}]}, requires=["agent"]),
    )


def test_recommendations_with_their_evidence(fleet_catalog):
    host = discovered(WEB)
    discovery._recommend(host, fleet_catalog)
    recs = {r.integration: r for r in host.recommended}
    assert set(recs) == {"node_exporter", "nginx_exporter", "lonely"}
    assert recs["nginx_exporter"].why == ["process nginx is running", "unit nginx.service is active"]
    assert recs["node_exporter"].blocked is None
    # Its requirement is neither working here nor recommended: shown, never installed.
    assert recs["lonely"].requires == ["agent"] and "needs agent first" in (recs["lonely"].blocked or "")


def test_verified_is_not_recommended_failing_is_repaired_first(fleet_catalog):
    facts = HostFacts(os_family="Debian", processes=frozenset({"nginx"}), packages={"newrelic-infra": "1.58.0"})
    host = discovered(facts, [Installed("node_exporter", "verified", ["package node-exporter 1"]),
                              Installed("agent", "failing", ["package newrelic-infra 1.58.0"],
                                        failures=["verify: license key invalid"])])
    discovery._recommend(host, fleet_catalog)
    recs = {r.integration: r for r in host.recommended}
    assert set(recs) == {"agent", "nginx_exporter", "nri_nginx", "lonely"}
    assert recs["agent"].repair and "license key invalid" in recs["agent"].why[0]
    assert recs["nri_nginx"].requires == ["agent"] and recs["nri_nginx"].blocked is None
    assert recs["nri_nginx"].why == ["process nginx is running", "package newrelic-infra 1.58.0 is installed"]


def test_an_integration_without_a_role_is_shown_but_not_installed(tmp_path):
    found = catalog_of(tmp_path, manifest("gen_only", discovery_rules={"any": [{"port": 80}]}), roles=False)
    host = discovered(WEB)
    discovery._recommend(host, found)
    assert [(r.integration, r.blocked) for r in host.recommended] == [
        ("gen_only", "no curated role (install it with --generate)")]


def test_scoped_variables(fleet_catalog):
    assert discovery.scoped_variables(["agent.license_key=x=y", "agent.port=1", "nri_nginx.a=b"], fleet_catalog) == {
        "agent": ["license_key=x=y", "port=1"], "nri_nginx": ["a=b"]}
    for bad in ("license_key=x", "@vars.yml", "agent.=x", "agent.x"):
        with pytest.raises(IntegrationError, match="name the integration"):
            discovery.scoped_variables([bad], fleet_catalog)
    with pytest.raises(IntegrationError, match="unknown integration 'nope'"):
        discovery.scoped_variables(["nope.x=1"], fleet_catalog)


def test_a_failed_requirement_stops_its_dependents_on_that_host_only(fleet_catalog, monkeypatch):
    """web1's agent repair fails, web2's works: nri_nginx goes to web2 only; nginx_exporter to both."""
    hosts = {}
    for name in ("web1", "web2"):
        facts = HostFacts(os_family="Debian", processes=frozenset({"nginx"}), packages={"newrelic-infra": "1"})
        host = discovered(facts, [Installed("node_exporter", "verified", ["x"]),
                                  Installed("agent", "failing", ["x"], failures=["verify: down"])])
        host.host = name
        discovery._recommend(host, fleet_catalog)
        hosts[name] = host
    report = DiscoveryReport("r0", "/tmp/r0", "ok", hosts)
    monkeypatch.setattr(discovery, "discover", lambda *a, **k: report)
    calls = []

    def run_action(action, name, inventory, *, limit, variables, **kwargs):
        calls.append((name, limit, tuple(variables)))
        statuses = {h: HostStatus.ROLLED_BACK if (name, h) == ("agent", "web1") else HostStatus.INSTALLED
                    for h in limit.split(",")}
        return SimpleNamespace(run_id=f"run-{name}", exit_code=9 if name == "agent" else 0,
                               hosts={h: SimpleNamespace(status=s, failures=[]) for h, s in statuses.items()})

    import integration_agent.api as api

    monkeypatch.setattr(api, "run_action", run_action)
    result = discovery.install_recommended(["inv.yml"], variables=["agent.license_key=k"], catalog=fleet_catalog,
                                           settings=SimpleNamespace(), scratch=SimpleNamespace())
    assert result.order == ["agent", "lonely", "nginx_exporter", "nri_nginx"]
    assert calls == [("agent", "web1,web2", ("license_key=k",)), ("lonely", "web2", ()),
                     ("nginx_exporter", "web1,web2", ()), ("nri_nginx", "web2", ())]
    assert result.hosts["web1"]["nri_nginx"] == {"status": "skipped",
                                                 "detail": "not attempted: agent failed on this host"}
    assert result.hosts["web2"]["nri_nginx"]["status"] == "installed"
    assert result.exit_code == 9  # the first failed run's code


def test_nothing_is_installed_when_the_operator_says_no(fleet_catalog, monkeypatch):
    host = discovered(WEB)
    discovery._recommend(host, fleet_catalog)
    monkeypatch.setattr(discovery, "discover", lambda *a, **k: DiscoveryReport("r0", "/tmp", "ok", {"web1": host}))
    import integration_agent.api as api

    monkeypatch.setattr(api, "run_action", lambda *a, **k: pytest.fail("installed after a no"))
    result = discovery.install_recommended(["inv.yml"], catalog=fleet_catalog, settings=SimpleNamespace(),
                                           scratch=SimpleNamespace(), on_discovered=lambda report: False)
    assert result.runs == [] and result.hosts["web1"]["lonely"]["status"] == "skipped"
