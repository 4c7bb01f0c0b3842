"""The Ansible collection ``intagent.integrations``, assembled from ``roles/`` and ``playbooks/``.

The collection is not a second copy kept in the repository: ``build`` stages the curated roles (without
their molecule scenarios), the AWX entry playbooks and the collection's metadata (rendered from
``playbook_templates/collection/``) in a temporary directory, then lets ``ansible-galaxy collection
build`` make the tarball, which installs offline with ``ansible-galaxy collection install``.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from .catalog import ENTRY_POINTS
from .errors import IntagentError
from .executor import ansible_env
from .paths import PROJECT_ROOT, ROLES_DIR
from .render import render

NAMESPACE = "intagent"
NAME = "integrations"
# The collection's own version: the interface of its roles and entry playbooks (semantic versioning).
VERSION = "1.0.0"
PLAYBOOKS_DIR = PROJECT_ROOT / "playbooks"
# What a role directory holds that does not belong in the collection.
_NOT_SHIPPED = shutil.ignore_patterns("molecule", "__pycache__", "*.pyc", ".*")


class CollectionBuildFailed(IntagentError):
    """ansible-galaxy could not build the collection."""

    exit_code = 1


@dataclass(frozen=True)
class RoleInfo:
    name: str
    entry_points: dict[str, str]  # entry point -> short description (from meta/argument_specs.yml)


def curated_roles(roles_dir: Path = ROLES_DIR) -> list[RoleInfo]:
    """Every role with all three entry points, described by its argument specs."""
    roles = []
    for role in sorted(p for p in roles_dir.iterdir() if (p / "meta" / "argument_specs.yml").is_file()):
        specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))["argument_specs"]
        missing = [e for e in ENTRY_POINTS if e not in specs or not (role / "tasks" / f"{e}.yml").is_file()]
        if missing:
            raise CollectionBuildFailed(f"role {role.name}: entry point(s) {', '.join(missing)} lack tasks or "
                                        "argument specs")
        roles.append(RoleInfo(role.name, {e: str(specs[e].get("short_description", "")).strip() for e in ENTRY_POINTS}))
    return roles


def source_repository() -> str:
    """Where the collection's source lives: the checkout's ``origin`` remote, else the checkout itself."""
    proc = subprocess.run(["git", "-C", str(PROJECT_ROOT), "remote", "get-url", "origin"], capture_output=True,
                          text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else PROJECT_ROOT.as_uri()


def stage(dest: Path, roles_dir: Path = ROLES_DIR, repository: str | None = None) -> Path:
    """Lay the collection's source tree out in ``dest`` (created) and return it."""
    roles = curated_roles(roles_dir)
    context = {"namespace": NAMESPACE, "name": NAME, "version": VERSION, "roles": roles,
               "repository": repository or source_repository()}
    dest.mkdir(parents=True)
    (dest / "galaxy.yml").write_text(render("collection/galaxy.yml.j2", **context), encoding="utf-8")
    (dest / "README.md").write_text(render("collection/README.md.j2", **context), encoding="utf-8")
    (dest / "meta").mkdir()
    shutil.copyfile(PROJECT_ROOT / "playbook_templates" / "collection" / "runtime.yml", dest / "meta" / "runtime.yml")
    shutil.copyfile(PROJECT_ROOT / "playbook_templates" / "collection" / "CHANGELOG.md", dest / "CHANGELOG.md")
    for role in roles:
        shutil.copytree(roles_dir / role.name, dest / "roles" / role.name, ignore=_NOT_SHIPPED)
        _lift_role_filters(dest / "roles" / role.name, dest / "plugins" / "filter")
    shutil.copytree(PLAYBOOKS_DIR, dest / "playbooks", ignore=_NOT_SHIPPED)
    return dest


def _lift_role_filters(role: Path, plugins: Path) -> None:
    """Ansible loads no plugin kept inside a role of a collection, and finds a collection's own filters
    only by their full name: a role's ``filter_plugins`` become the collection's filters, and the role's
    files call them as ``intagent.integrations.<filter>`` (the role in ``roles/`` keeps the short names)."""
    folder = role / "filter_plugins"
    if not folder.is_dir():
        return
    names: list[str] = []
    plugins.mkdir(parents=True, exist_ok=True)
    for source in sorted(folder.glob("*.py")):
        shutil.copyfile(source, plugins / source.name)
        names.extend(_filter_names(source))
    shutil.rmtree(folder)
    if not names:
        return
    used = re.compile(r"\|\s*(" + "|".join(map(re.escape, names)) + r")\b")
    for path in role.rglob("*.yml"):
        text = path.read_text(encoding="utf-8")
        lifted = used.sub(lambda m: f"| {NAMESPACE}.{NAME}.{m.group(1)}", text)
        if lifted != text:
            path.write_text(lifted, encoding="utf-8")


def _filter_names(source: Path) -> list[str]:
    """The names a filter plugin file provides (its FilterModule's filters)."""
    spec = importlib.util.spec_from_file_location(f"intagent_filter_{source.stem}", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return sorted(module.FilterModule().filters())


def build(out_dir: Path, repository: str | None = None) -> Path:
    """Build the collection tarball into ``out_dir``; return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="intagent-collection-") as tmp:
        source = stage(Path(tmp) / NAME, repository=repository)
        proc = subprocess.run(["ansible-galaxy", "collection", "build", "--force", "--output-path",
                               str(out_dir.resolve())],
                              cwd=source, env=ansible_env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CollectionBuildFailed("ansible-galaxy collection build failed: "
                                    f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    tarball = out_dir / f"{NAMESPACE}-{NAME}-{VERSION}.tar.gz"
    if not tarball.is_file():
        raise CollectionBuildFailed(f"ansible-galaxy reported success but {tarball} is missing")
    return tarball
