"""The integration catalog: manifests found by folder and through the ``intagent.integrations`` entry point.

An integration called ``NAME`` is a folder holding ``knowledge/NAME/integration.yml`` (the manifest),
``roles/NAME/`` (entry points ``main`` = install, ``verify``, ``uninstall``) and ``molecule/NAME/``. The
project's own folder is searched first; a third-party package adds integrations by declaring an entry
point in the group ``intagent.integrations`` whose value is a module with a ``ROOT`` path (or a callable
returning one) laid out the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import IntegrationError
from .yamlfile import read_yaml
from .paths import PROJECT_ROOT

ENTRY_POINT_GROUP = "intagent.integrations"
ENTRY_POINTS = ("main", "verify", "uninstall")
NAME_PATTERN = r"^[a-z][a-z0-9_]{1,40}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Parameter(_Strict):
    """One user-facing parameter; the role variable is ``<integration>_<parameter>``."""

    type: Literal["str", "int", "bool", "list", "dict"] = "str"
    description: str
    default: Any = None
    required: bool = False
    secret: bool = False
    env: str | None = Field(None, description="Environment variable the value may come from.")
    choices: list[Any] | None = None


class Platform(_Strict):
    family: Literal["debian", "redhat", "suse"]
    distributions: list[str]
    versions: list[str]
    tested_in_lab: bool = False


class Footprint(_Strict):
    """What the integration owns on a host; uninstall removes it, policies confine changes to it."""

    packages: list[str] = []
    services: list[str] = []
    paths: list[str] = []
    users: list[str] = []
    ports: list[int] = []
    urls: list[str] = []


class Source(_Strict):
    title: str
    url: str
    retrieved: str | None = None


class Manifest(_Strict):
    """``knowledge/NAME/integration.yml``."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str
    version: str
    parameters: dict[str, Parameter] = {}
    platforms: list[Platform]
    owns: Footprint
    sources: list[Source] = Field(min_length=1)

    @field_validator("parameters")
    @classmethod
    def _names(cls, value: dict[str, Parameter]) -> dict[str, Parameter]:
        for name, param in value.items():
            if not name.isidentifier() or name != name.lower():
                raise ValueError(f"parameter name {name!r} must be a lower-case identifier")
            if param.required and param.default is not None:
                raise ValueError(f"parameter {name!r} is required and has a default")
        return value


@dataclass(frozen=True)
class Integration:
    """A manifest and the folder it came from."""

    manifest: Manifest
    root: Path  # folder that holds knowledge/, roles/, molecule/
    origin: str  # "project" or the entry point's distribution name

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def knowledge_dir(self) -> Path:
        return self.root / "knowledge" / self.name

    @property
    def role_dir(self) -> Path:
        return self.root / "roles" / self.name

    @property
    def roles_path(self) -> Path:
        return self.root / "roles"

    @property
    def has_role(self) -> bool:
        return (self.role_dir / "tasks" / "main.yml").is_file()

    def role_var(self, parameter: str) -> str:
        return f"{self.name}_{parameter}"

    @cached_property
    def argument_specs(self) -> dict[str, Any]:
        path = self.role_dir / "meta" / "argument_specs.yml"
        if not path.is_file():
            return {}
        return (yaml.safe_load(path.read_text()) or {}).get("argument_specs", {})


def load_manifest(path: Path) -> Manifest:
    """Parse and validate one manifest, naming the file and key on error."""
    data = read_yaml(path, IntegrationError)
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise IntegrationError(f"{path}: invalid manifest: {problems}") from None
    if manifest.name != path.parent.name:
        raise IntegrationError(f"{path}: manifest name {manifest.name!r} does not match its folder")
    return manifest


def _roots() -> list[tuple[Path, str]]:
    roots = [(PROJECT_ROOT, "project")]
    for extra in filter(None, os.environ.get("INTAGENT_INTEGRATIONS_PATH", "").split(os.pathsep)):
        roots.append((Path(extra), extra))
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            target = ep.load()
            root = target() if callable(target) else getattr(target, "ROOT", target)
        except Exception as exc:  # a broken plugin must be named, not crash the catalog
            raise IntegrationError(f"integration plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from None
        roots.append((Path(root), ep.dist.name if ep.dist else ep.name))
    return roots


class Catalog:
    """Every integration that can be found, by name."""

    def __init__(self, roots: list[tuple[Path, str]] | None = None) -> None:
        self._roots = roots if roots is not None else _roots()

    @cached_property
    def integrations(self) -> dict[str, Integration]:
        found: dict[str, Integration] = {}
        for root, origin in self._roots:
            for manifest_path in sorted((root / "knowledge").glob("*/integration.yml")):
                manifest = load_manifest(manifest_path)
                found.setdefault(manifest.name, Integration(manifest, root, origin))
        return found

    def get(self, name: str) -> Integration:
        try:
            return self.integrations[name]
        except KeyError:
            known = ", ".join(sorted(self.integrations)) or "none"
            raise IntegrationError(f"unknown integration {name!r}", hint=f"known: {known}") from None
