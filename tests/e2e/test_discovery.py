"""Discovery on four lab hosts running nginx, MariaDB, PostgreSQL and Redis, and nothing: what it recommends,
that it changes nothing, that install --recommended installs exactly that, and the dependent integration.

The hosts are set up once for the module, and the tests run in order (each builds on what the one before
it installed)."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.conftest import SNAPSHOT_SKIP, run_cli, ssh
from tests.fixtures.newrelic_standin import build_standin_deb
from tests.fixtures.nri_redis_standin import build_standin_deb as build_nri_redis_deb

pytestmark = pytest.mark.lab
SERVICES = {"lab1": ["nginx"], "lab2": ["mariadb-server"], "lab3": ["postgresql", "redis-server"], "lab4": []}
HOSTS = sorted(SERVICES)
EXPECTED = {"lab1": {"node_exporter", "nginx_exporter"}, "lab2": {"node_exporter", "mysqld_exporter"},
            "lab3": {"node_exporter", "postgres_exporter", "redis_exporter"}, "lab4": {"node_exporter"}}
WHY = {"nginx_exporter": "process nginx is running", "mysqld_exporter": "process mariadbd is running",
       "postgres_exporter": "process postgres is running", "redis_exporter": "process redis-server is running",
       "node_exporter": "os_family is Debian"}
UP = {"nginx_exporter": (9113, "nginx_up 1"), "mysqld_exporter": (9104, "mysql_up 1"),
      "postgres_exporter": (9187, "pg_up 1"), "redis_exporter": (9121, "redis_up 1"),
      "node_exporter": (9100, "node_exporter_build_info")}
# What the services write by themselves while they run (their data and logs): not discovery's doing.
SERVICE_DATA = ("/var/lib/mysql", "/var/lib/postgresql", "/var/lib/redis", "/var/log")
AGENT_MIRROR = ["--var", "infra_agent.apt_source=deb [trusted=yes] http://10.231.0.1:8080/ ./",
                "--var", "infra_agent.gpg_key_url="]


def install_packages(lab, host: str, packages: list[str]) -> None:
    if not packages:
        return
    proc = ssh(lab, host, "export DEBIAN_FRONTEND=noninteractive; apt-get -q update >/dev/null && "
                          f"apt-get -q -y install --no-install-recommends {' '.join(packages)} >/dev/null")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def fleet(lab_settings, tmp_path_factory):
    from integration_agent.lab import Lab

    lab = Lab(lab_settings)
    lab.up(len(HOSTS))
    folder = tmp_path_factory.mktemp("standins")
    lab.add_packages([build_standin_deb(folder), build_nri_redis_deb(folder)])
    lab.reset(HOSTS)
    with ThreadPoolExecutor(len(HOSTS)) as pool:
        list(pool.map(lambda h: install_packages(lab, h, SERVICES[h]), HOSTS))
    return lab


def overlay(lab, name: str):
    from integration_agent.lab.overlay import Snapshot

    host = next(h for h in lab.hosts() if h.name == name)
    return Snapshot.take(Path(host.dir) / "upper", (*SNAPSHOT_SKIP, *SERVICE_DATA))


def changed(lab, name: str, before) -> list[str]:
    from integration_agent.audit import BOOKKEEPING
    from integration_agent.catalog import within
    from integration_agent.lab.overlay import diff

    host = next(h for h in lab.hosts() if h.name == name)
    return [str(c) for c in diff(before, overlay(lab, name), lab.base(host.release).path)
            if not any(within(c.path, p) for p in BOOKKEEPING)]


def discover(lab, env, *hosts: str) -> dict:
    proc = run_cli("discover", "-i", str(lab.inventory_path), "-l", ",".join(hosts), "--json", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def metrics(lab, host: str, port: int) -> str:
    return ssh(lab, host, "python3 -c \"import urllib.request as u; "
                          f"print(u.urlopen('http://127.0.0.1:{port}/metrics', timeout=5).read().decode())\"").stdout


def test_discover_recommends_the_exporters_of_the_services_and_changes_nothing(fleet, isolated_env):
    before = {h: overlay(fleet, h) for h in HOSTS}
    report = discover(fleet, isolated_env, *HOSTS)
    for host in HOSTS:
        found = report["hosts"][host]
        assert found["status"] == "discovered", found
        recs = {r["integration"]: r for r in found["recommended"]}
        assert set(recs) == EXPECTED[host], (host, recs)
        for name, rec in recs.items():
            assert WHY[name] in rec["why"], (host, rec)
            assert rec["blocked"] is None and rec["requires"] == []
        assert found["installed"] == []
    assert "nginx" in report["hosts"]["lab1"]["services"] and 80 in report["hosts"]["lab1"]["ports"]
    assert {"postgresql@15-main", "redis-server"} <= set(report["hosts"]["lab3"]["services"])
    assert {h: changed(fleet, h, before[h]) for h in HOSTS} == {h: [] for h in HOSTS}


def test_install_recommended_installs_exactly_that_and_discover_then_shows_it_verified(fleet, isolated_env):
    proc = run_cli("install", "--recommended", "-i", str(fleet.inventory_path), "-l", ",".join(HOSTS), "--yes",
                   "--json", env=isolated_env, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    report = json.loads(proc.stdout)
    assert report["order"] == sorted(set().union(*EXPECTED.values()))
    for host in HOSTS:
        assert {name: o["status"] for name, o in report["hosts"][host].items()} == dict.fromkeys(
            EXPECTED[host], "installed"), host
        for name in EXPECTED[host]:
            port, gauge = UP[name]
            assert gauge in metrics(fleet, host, port), (host, name)
    # Nothing where it does not belong.
    assert "nginx_up" not in metrics(fleet, "lab4", 9113) and "pg_up" not in metrics(fleet, "lab1", 9187)
    after = discover(fleet, isolated_env, *HOSTS)
    for host in HOSTS:
        found = after["hosts"][host]
        assert found["recommended"] == [], (host, found["recommended"])
        assert {i["integration"]: i["status"] for i in found["installed"]} == dict.fromkeys(
            EXPECTED[host], "verified"), host


def agent_inventory(fleet, tmp_path: Path, keys: dict[str, str]) -> Path:
    """The lab inventory with each host's own license key (an inventory variable, as a vault would hold it)."""
    data = yaml.safe_load(fleet.inventory_path.read_text())
    for host, key in keys.items():
        data["all"]["children"]["lab"]["hosts"][host]["infra_agent_license_key"] = key
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_dependent_integration_goes_only_where_its_agent_works(fleet, isolated_env, tmp_path):
    """Both hosts run Redis. lab3's agent is installed and works; lab4 runs an agent whose license key is
    refused (installed by hand), and its inventory key is refused too. Discovery recommends repairing lab4's
    agent and, after it, nri_redis (which requires infra_agent) on both. install --recommended: the repair
    fails and is rolled back, so nri_redis is not attempted on lab4, while lab3 gets it and lab4 gets the
    other recommendations. nri_redis asked for by name is then refused on lab4, changing nothing there."""
    install_packages(fleet, "lab4", ["redis-server"])
    inventory = agent_inventory(fleet, tmp_path, {"lab3": f"NRKEY{uuid.uuid4().hex}", "lab4": "invalid-key-lab4"})
    mirror = [a.replace("infra_agent.", "") for a in AGENT_MIRROR]
    agent = run_cli("install", "infra_agent", "-i", str(inventory), "-l", "lab3", *mirror, "--json", env=isolated_env)
    assert agent.returncode == 0, agent.stdout[-3000:] + agent.stderr
    assert ssh(fleet, "lab4", "printf 'license_key: invalid-by-hand\\n' > /etc/newrelic-infra.yml").returncode == 0
    install_packages(fleet, "lab4", ["newrelic-infra"])

    found = discover(fleet, isolated_env, "lab3", "lab4")["hosts"]
    on3 = {r["integration"]: r for r in found["lab3"]["recommended"]}
    on4 = {r["integration"]: r for r in found["lab4"]["recommended"]}
    assert set(on3) == {"nri_redis"} and on3["nri_redis"]["requires"] == [], on3  # its agent is verified
    assert set(on4) == {"infra_agent", "nri_redis", "redis_exporter"}, on4  # node_exporter: verified already
    assert on4["infra_agent"]["repair"] and on4["nri_redis"]["requires"] == ["infra_agent"]
    assert "package newrelic-infra 1.58.0 is installed" in on4["nri_redis"]["why"]

    proc = run_cli("install", "--recommended", "-i", str(inventory), "-l", "lab3,lab4", *AGENT_MIRROR, "--yes",
                   "--json", env=isolated_env, timeout=1500)
    assert proc.returncode != 0
    report = json.loads(proc.stdout)
    assert report["order"].index("infra_agent") < report["order"].index("nri_redis")
    assert {n: o["status"] for n, o in report["hosts"]["lab3"].items()} == {"nri_redis": "installed"}
    outcomes = report["hosts"]["lab4"]
    assert outcomes["infra_agent"]["status"] == "rolled_back"
    assert outcomes["nri_redis"] == {"status": "skipped", "detail": "not attempted: infra_agent failed on this host"}
    assert outcomes["redis_exporter"]["status"] == "installed"
    assert "redis_up 1" in metrics(fleet, "lab4", 9121)
    assert ssh(fleet, "lab4", "test -e /etc/newrelic-infra/integrations.d/redis-config.yml").returncode != 0

    before = overlay(fleet, "lab4")
    refused = run_cli("install", "nri_redis", "-i", str(inventory), "-l", "lab4", "--json", env=isolated_env)
    assert refused.returncode != 0
    host = json.loads(refused.stdout)["hosts"]["lab4"]
    assert host["status"] == "failed" and host["changed"].get("apply", 0) == 0, host
    assert any("nri_redis needs infra_agent on this host" in f for f in host["failures"]), host["failures"]
    assert changed(fleet, "lab4", before) == []
    on3 = discover(fleet, isolated_env, "lab3")["hosts"]["lab3"]
    assert {i["integration"]: i["status"] for i in on3["installed"]} == {
        "infra_agent": "verified", "nri_redis": "verified", "node_exporter": "verified",
        "postgres_exporter": "verified", "redis_exporter": "verified"}
