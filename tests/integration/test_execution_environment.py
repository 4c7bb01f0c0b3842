"""The execution environment's build context (``scripts/build-ee.sh``, ``execution-environment.yml``).

No container engine here: the context is checked, and what it ships is put to work the way the image's
build stages would. The collection installs offline from the context's galaxy requirements; the builder
stage's introspection turns the context's pip requirements into the wheel's file URL; the wheel from the
context, installed in a fresh venv, runs intagent with its own roles, templates, knowledge and ansible.cfg,
away from the checkout.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from packaging.requirements import Requirement

from integration_agent import __version__
from integration_agent.collection import NAME, NAMESPACE, curated_roles
from integration_agent.paths import DATA_DIRNAME, SHIPPED
from tests.conftest import REPO

BIN = Path(sys.executable).parent
COLLECTIONS_IN_IMAGE = "/usr/share/ansible/collections"


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _env(**extra: str) -> dict[str, str]:
    """This environment without INTAGENT_* settings, with the project venv's tools on PATH."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("INTAGENT_")}
    return {**base, "PATH": f"{BIN}{os.pathsep}{base.get('PATH', '')}", **extra}


def _stage(containerfile: str, name: str) -> str:
    """The lines of one build stage (``FROM ... AS name`` up to the next ``FROM``)."""
    match = re.search(rf"^FROM \S+ AS {name}\n(.*?)(?=^FROM |\Z)", containerfile, re.M | re.S)
    assert match, f"no stage {name!r} in the Containerfile"
    return match.group(1)


@pytest.fixture(scope="module")
def ee(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """``scripts/build-ee.sh OUT`` run once: OUT/dist, OUT/build/ee (the context), the built names."""
    out = tmp_path_factory.mktemp("ee")
    proc = _run([str(REPO / "scripts" / "build-ee.sh"), str(out)], cwd=out, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    context = Path(proc.stdout.strip().splitlines()[-1])
    assert context == out / "build" / "ee"
    wheels = sorted((out / "dist").glob("intagent-*.whl"))
    tarballs = sorted((out / "dist").glob(f"{NAMESPACE}-{NAME}-*.tar.gz"))
    assert len(wheels) == 1 and len(tarballs) == 1, sorted(p.name for p in (out / "dist").iterdir())
    return SimpleNamespace(out=out, context=context, build=context / "_build", stderr=proc.stderr,
                           wheel=wheels[0].name, tarball=tarballs[0].name,
                           containerfile=(context / "Containerfile").read_text())


@pytest.fixture(scope="module")
def collections(ee, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The galaxy stage's installs, from the context's requirements.yml, offline, into a temp path."""
    dest = tmp_path_factory.mktemp("collections")
    env = _env(ANSIBLE_GALAXY_DISABLE_GPG_VERIFY="1")
    roles = _run([str(BIN / "ansible-galaxy"), "role", "install", "-r", "requirements.yml",
                  "--roles-path", str(dest / "roles")], cwd=ee.build, env=env)
    assert roles.returncode == 0, roles.stdout + roles.stderr
    proc = _run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-r", "requirements.yml",
                 "-p", str(dest)], cwd=ee.build, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dest


def test_context_holds_the_wheel_the_collection_and_requirements_naming_them(ee):
    # Exactly this build's two files, as built into dist/.
    assert sorted(p.name for p in (ee.build / "dist").iterdir()) == sorted([ee.wheel, ee.tarball])
    for name in (ee.wheel, ee.tarball):
        assert (ee.build / "dist" / name).read_bytes() == (ee.out / "dist" / name).read_bytes()

    pip_lines = [line for line in (ee.build / "requirements.txt").read_text().splitlines()
                 if line.strip() and not line.startswith("#")]
    assert len(pip_lines) == 1, pip_lines
    req = Requirement(pip_lines[0])
    assert req.name == "intagent" and req.url == f"file:///output/dist/{ee.wheel}"
    assert req.extras == {"generate"}  # generated playbooks work in the image too
    assert ee.wheel.startswith(f"intagent-{__version__}-")  # the version's one source

    galaxy = yaml.safe_load((ee.build / "requirements.yml").read_text())
    assert galaxy == {"collections": [{"name": f"dist/{ee.tarball}", "type": "file"}]}

    bindep = (ee.build / "bindep.txt").read_text()
    assert "openssh-clients [platform:rpm]" in bindep

    # The same definition ansible-builder read, next to dist/.
    assert (ee.out / "execution-environment.yml").read_text() == (REPO / "execution-environment.yml").read_text()
    assert f"podman build -f {ee.context}/Containerfile" in ee.stderr


def test_containerfile_installs_our_files_in_the_right_stages(ee):
    text = ee.containerfile
    definition = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert definition["version"] == 3
    assert f'ARG EE_BASE_IMAGE="{definition["images"]["base_image"]["name"]}"' in text
    assert re.search(r":[\w.-]+$", definition["images"]["base_image"]["name"]), "pin the base image's tag"

    # ansible-core and ansible-runner in the ranges intagent itself declares.
    declared = {Requirement(d).name: str(Requirement(d).specifier)
                for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="(.*)"$', text, re.M).group(1).split()
    assert {Requirement(r).name: str(Requirement(r).specifier) for r in refs} == {
        "ansible-core": declared["ansible-core"], "ansible-runner": declared["ansible-runner"]}
    assert "RUN $PYCMD -m pip install --no-cache-dir $ANSIBLE_INSTALL_REFS" in _stage(text, "base")

    # Galaxy stage: the context at /build, the collection from requirements.yml, never from Galaxy.
    galaxy = _stage(text, "galaxy")
    assert 'ARG ANSIBLE_GALAXY_CLI_COLLECTION_OPTS="--offline"' in text
    assert "COPY _build /build\nWORKDIR /build" in galaxy
    assert (f"ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml "
            f'--collections-path "{COLLECTIONS_IN_IMAGE}"') in galaxy

    # Builder stage: the wheel at /output/dist before the pip requirements are assembled.
    builder = _stage(text, "builder")
    copy, assemble = builder.find("COPY _build/dist/ /output/dist/"), builder.find("RUN /output/scripts/assemble")
    assert 0 <= copy < assemble, builder
    assert "COPY _build/requirements.txt requirements.txt" in builder and "--user-pip=requirements.txt" in builder

    # Final stage: /output (with the wheel) from the builder, pip installs requirements.txt from it, the
    # collection from the galaxy stage, our checks, and only then /output goes.
    final = _stage(text, "final")
    steps = ["COPY --from=galaxy /usr/share/ansible /usr/share/ansible", "COPY --from=builder /output/ /output/",
             "RUN /output/scripts/install-from-bindep", "/etc/ansible/ansible.cfg", "RUN intagent --version",
             "RUN rm -rf /output", "USER 1000"]
    positions = [final.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), dict(zip(steps, positions, strict=True))


def test_collection_installs_offline_from_the_context(ee, collections):
    listed = _run([str(BIN / "ansible-galaxy"), "collection", "list", "-p", str(collections)], cwd=ee.build,
                  env=_env())
    assert listed.returncode == 0, listed.stderr
    version = ee.tarball.removeprefix(f"{NAMESPACE}-{NAME}-").removesuffix(".tar.gz")
    assert re.search(rf"^{NAMESPACE}\.{NAME}\s+{re.escape(version)}\s*$", listed.stdout, re.M), listed.stdout

    installed = collections / "ansible_collections" / NAMESPACE / NAME
    for role in curated_roles():
        for entry in role.entry_points:
            assert (installed / "roles" / role.name / "tasks" / f"{entry}.yml").is_file(), (role.name, entry)
    for playbook in ("install", "verify", "uninstall"):
        assert (installed / "playbooks" / f"{playbook}.yml").is_file()

    # The final stage's own checks (test -f ...) hold for this collection.
    checked = re.findall(r"test -f (\S+)", ee.containerfile)
    assert checked
    for path in checked:
        assert path.startswith(COLLECTIONS_IN_IMAGE + "/"), path
        assert (collections / path.removeprefix(COLLECTIONS_IN_IMAGE + "/")).is_file(), path

    # Ansible loads the roles by their full name from there.
    doc = _run([str(BIN / "ansible-doc"), "-t", "role", f"{NAMESPACE}.{NAME}.node_exporter"], cwd=ee.build,
               env=_env(ANSIBLE_COLLECTIONS_PATH=str(collections)))
    plain = re.sub(r"\x1b\[[0-9;]*m", "", doc.stdout)
    assert doc.returncode == 0 and "ENTRY POINT: verify" in plain, plain[-2000:] + doc.stderr


def test_builder_stage_introspection_resolves_the_wheel(ee, collections, tmp_path):
    """``introspect.py`` as the builder stage runs it: the pip list it writes is what assemble installs."""
    written = tmp_path / "requirements.txt"
    proc = _run([sys.executable, str(ee.build / "scripts" / "introspect.py"), "introspect", str(collections),
                 "--user-pip=requirements.txt", "--user-bindep=bindep.txt", f"--write-pip={written}",
                 f"--write-bindep={tmp_path / 'bindep.txt'}"], cwd=ee.build, env=_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line.split(" #")[0].strip() for line in written.read_text().splitlines() if line.strip()]
    assert [str(Requirement(line).url) for line in lines] == [f"file:///output/dist/{ee.wheel}"]
    assert "openssh-clients" in (tmp_path / "bindep.txt").read_text()


def test_wheel_ships_the_project_files_inside_the_package(ee):
    with zipfile.ZipFile(ee.build / "dist" / ee.wheel) as wheel:
        names = set(wheel.namelist())
    prefix = f"integration_agent/{DATA_DIRNAME}/"
    for item in SHIPPED:
        source = REPO / item
        expected = {item} if source.is_file() else {
            p.relative_to(REPO).as_posix() for p in source.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")}
        assert expected, item
        shipped = {n.removeprefix(prefix) for n in names if n.startswith(prefix + item)}
        assert shipped == expected, (item, sorted(expected ^ shipped)[:10])
    # Package data beside the modules: each policy rule's pass and fail example plans.
    examples = {p.relative_to(REPO).as_posix() for p in (REPO / "integration_agent").rglob("*.yml")}
    assert len(examples) >= 21 and examples <= names, sorted(examples - names)[:10]


def test_installed_wheel_runs_intagent_with_its_own_files(ee, tmp_path):
    """The context's wheel in a fresh venv (its dependencies from this venv): intagent finds its roles,
    templates, knowledge and ansible.cfg inside the package, from a directory far from the checkout."""
    venv = tmp_path / "venv"
    created = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    install = _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "--disable-pip-version-check", "-q", str(ee.build / "dist" / ee.wheel)], cwd=tmp_path)
    assert install.returncode == 0, install.stderr
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp_path).stdout.strip())
    # Dependencies from this venv, after the new venv's own site-packages (so its intagent wins).
    (site / "_intagent_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = _env(XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_STATE_HOME=str(tmp_path / "state"),
               XDG_CACHE_HOME=str(tmp_path / "cache"), INTAGENT_LEARN="false")
    env.pop("PYTHONPATH", None)

    probe = _run([str(python), "-c", """
import json, subprocess
from integration_agent import paths
from integration_agent.executor import ansible_env
env = ansible_env()
doc = subprocess.run(["ansible-doc", "-t", "role", "node_exporter"], env=env, capture_output=True, text=True)
dump = subprocess.run(["ansible-config", "dump", "--only-changed"], env=env, capture_output=True, text=True)
print(json.dumps({"root": str(paths.PROJECT_ROOT), "package": str(paths.PACKAGE_DIR),
    "cfg": str(paths.ANSIBLE_CFG), "cfg_ok": paths.ANSIBLE_CFG.is_file(),
    "role": (paths.ROLES_DIR / "node_exporter" / "tasks" / "main.yml").is_file(),
    "template": (paths.TEMPLATES_DIR / "role.yml.j2").is_file(),
    "knowledge": (paths.KNOWLEDGE_DIR / "node_exporter" / "integration.yml").is_file(),
    "env_cfg": env["ANSIBLE_CONFIG"], "env_roles": env["ANSIBLE_ROLES_PATH"],
    "doc": doc.returncode, "doc_out": doc.stdout[-400:] + doc.stderr[-400:],
    "dump": dump.stdout + dump.stderr}))
"""], cwd=work, env=env)
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout)
    assert Path(seen["package"]) == site / "integration_agent"
    assert Path(seen["root"]) == site / "integration_agent" / DATA_DIRNAME
    assert seen["cfg_ok"] and seen["role"] and seen["template"] and seen["knowledge"], seen
    # Every Ansible run is pointed at the wheel's ansible.cfg and roles, and Ansible reads them.
    assert seen["env_cfg"] == seen["cfg"] and Path(seen["env_roles"]) == Path(seen["root"]) / "roles"
    assert seen["doc"] == 0, seen["doc_out"]
    assert re.search(rf"DEFAULT_FORKS\({re.escape(seen['cfg'])}\) = 20", seen["dump"]), seen["dump"]
    assert re.search(r"HOST_PATTERN_MISMATCH\(.*\) = error", seen["dump"]), seen["dump"]

    intagent = str(venv / "bin" / "intagent")
    listed = _run([intagent, "list", "--json"], cwd=work, env=env)
    assert listed.returncode == 0, listed.stderr
    names = json.dumps(json.loads(listed.stdout))
    for name in ("node_exporter", "infra_agent", "zabbix_agent", "collectd"):
        assert f'"{name}"' in names, names
    shown = _run([intagent, "show", "node_exporter"], cwd=work, env=env)
    assert shown.returncode == 0 and "install_method" in shown.stdout, shown.stdout + shown.stderr

    # A real plan: playbooks rendered from the wheel's templates, run by ansible-runner with its
    # ansible.cfg; the one host refuses SSH at once, so it ends unreachable (exit 11), not in an error.
    inventory = work / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    nohost:\n      ansible_host: 127.0.0.1\n      ansible_port: 1\n")
    plan = _run([intagent, "plan", "node_exporter", "--inventory", str(inventory), "--json"], cwd=work, env=env)
    report = json.loads(plan.stdout)
    assert plan.returncode == 11 and report["hosts"]["nohost"]["status"] == "unreachable", \
        plan.stdout[-2000:] + plan.stderr[-2000:]
    assert "Connection refused" in " ".join(report["hosts"]["nohost"]["failures"]), report
    assert (Path(report["run_dir"]) / "playbooks" / "main.yml").is_file()
