"""The integration catalog: manifests found by folder and through the ``intagent.integrations`` entry point.

An integration called ``NAME`` is a folder holding ``knowledge/NAME/integration.yml`` (the manifest),
``roles/NAME/`` (entry points ``main`` = install, ``verify``, ``uninstall``) and ``molecule/NAME/``. The
project's own folder is searched first, then the folders of the ``integrations_path`` setting (given to
the catalog as ``paths``: a catalog made without them has none); a third-party package adds integrations
by declaring an entry point in the group ``intagent.integrations`` whose value is a module with a ``ROOT``
path (or a callable returning one) laid out the same way.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import IntegrationError
from .paths import PROJECT_ROOT
from .yamlfile import read_yaml

if TYPE_CHECKING:
    from .settings import Settings

ENTRY_POINT_GROUP = "intagent.integrations"
ENTRY_POINTS = ("main", "verify", "uninstall")
NAME_PATTERN = r"^[a-z][a-z0-9_]{1,40}$"
FACT_SUBSETS = ("all", "min", "hardware", "network", "virtual", "ohai", "facter")


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
    pattern: str | None = Field(None, description="A regular expression the whole value must match (checked "
                                "before any playbook runs); generated plans may build paths, URLs, unit "
                                "arguments and checksums only from parameters that have one.")
    within: list[str] | None = Field(None, description="Absolute directories the value, a path, must stay "
                                     "inside after normalisation (an empty value means unset).")
    port: bool = Field(False, description="The value is a TCP port of the integration's own (verify may call it "
                       "on loopback, like the ports in owns.ports).")
    placeholders: list[str] = Field([], description="Names written {name} in the value that the role fills in "
                                    "(node_exporter's binary_url has {version} and {arch}).")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern {value!r} is not a regular expression: {exc}") from None
        return value

    def problem(self, value: Any) -> str | None:
        """Why ``value`` breaks this parameter's pattern or ``within`` (None when it does not)."""
        text = str(value)
        if self.pattern is not None and not isinstance(value, (dict, list)) and not re.fullmatch(self.pattern, text):
            return f"{text!r} does not match {self.pattern!r}"
        if self.within and text and not any(within(text, d) for d in self.within):
            return f"{text!r} is not inside {', '.join(self.within)}"
        return None


def within(path: str, directory: str) -> bool:
    """Is the absolute ``path``, normalised (no '..' climbing out), ``directory`` or below it?"""
    if not path.startswith("/"):
        return False
    normal = posixpath.normpath("/" + path.lstrip("/"))
    base = posixpath.normpath("/" + directory.lstrip("/"))
    return normal == base or normal.startswith(base.rstrip("/") + "/")


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


class Unit(_Strict):
    """A systemd unit generated plans may install, rendered from intagent's own template: the program,
    its user and the shapes of its arguments are fixed here, never by the model."""

    exec: str = Field(pattern=r"^/[A-Za-z0-9_./-]+$", description="Absolute path of the program (ExecStart).")
    user: str = Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$", description="The unprivileged user it runs as.")
    description: str = ""
    arguments: list[str] = Field([], description="fnmatch patterns; every argument a plan passes must match one.")


class Source(_Strict):
    title: str
    url: str
    retrieved: str | None = None


class Match(_Strict):
    """One thing a host shows, for discovery; exactly one key is set."""

    process: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:@+-]{1,64}$", description="A running process: its "
                                "name as ps shows it (the kernel's comm, 15 characters at most) or its program's "
                                "file name.")
    package: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9+.-]{0,99}$",
                                description="An installed package (dpkg).")
    port: int | None = Field(None, ge=1, le=65535, description="A TCP port something listens on, on any address.")
    unit: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:@-]{1,100}$",
                             description="An active systemd unit; a name without a suffix means NAME.service.")
    os_family: str | None = Field(None, pattern=r"^[A-Za-z]{2,20}$",
                                  description="Ansible's os_family fact (Debian, RedHat, Suse...).")

    @model_validator(mode="after")
    def _one(self) -> Match:
        given = [key for key, value in self.model_dump().items() if value is not None]
        if len(given) != 1:
            raise ValueError(f"a discovery rule names exactly one of {', '.join(MATCH_KINDS)} (this one has "
                             f"{', '.join(given) or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(key for key, value in self.model_dump().items() if value is not None)

    @property
    def value(self) -> str | int:
        value: str | int = getattr(self, self.kind)
        return value

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


MATCH_KINDS = tuple(Match.model_fields)


class Discovery(_Strict):
    """When an integration is relevant to a host: one of ``any`` matches (or ``any`` is empty) and every one of
    ``all`` does. An integration with no rule at all is never recommended; install it by name."""

    any: list[Match] = Field([], description="The integration is relevant when one of these matches.")
    all: list[Match] = Field([], description="...and only when every one of these matches too.")

    @property
    def empty(self) -> bool:
        return not self.any and not self.all


class Manifest(_Strict):
    """``knowledge/NAME/integration.yml``."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str
    version: str
    parameters: dict[str, Parameter] = {}
    platforms: list[Platform]
    owns: Footprint
    sources: list[Source] = Field(min_length=1)
    commands: list[list[str]] = Field([], description="The only argv shapes ansible.builtin.command (and a file "
                                      "module's validate) may run in a generated plan: literal words, '%s' "
                                      "for validate's file, or '{{ <role variable> }}' of a parameter.")
    secret_files: list[str] = Field([], description="The only files a generated plan may write a secret to "
                                    "(with mode 0600 or stricter); each inside owns.paths.")
    units: dict[str, Unit] = Field({}, description="systemd units generated plans may install with "
                                   "intagent.systemd_unit; each name is one of owns.services.")
    facts: list[Literal[FACT_SUBSETS]] = Field(  # type: ignore[valid-type]
        ["min"], min_length=1, description="The fact subsets the roles read (Ansible's gather_subset), gathered "
        "once per run: min holds the platform, distribution, architecture, Python and service manager.")
    discovery: Discovery = Field(Discovery(), description="What makes the integration relevant to a host "
                                 "(`intagent discover` recommends it there).")
    requires: list[Annotated[str, Field(pattern=NAME_PATTERN)]] = Field(
        [], description="Integrations that must be installed and working on a host before this one.")

    @field_validator("parameters")
    @classmethod
    def _names(cls, value: dict[str, Parameter]) -> dict[str, Parameter]:
        for name, param in value.items():
            if not name.isidentifier() or name != name.lower():
                raise ValueError(f"parameter name {name!r} must be a lower-case identifier")
            if param.required and param.default is not None:
                raise ValueError(f"parameter {name!r} is required and has a default")
            if param.default is not None and (problem := param.problem(param.default)):
                raise ValueError(f"parameter {name!r}: its default {problem}")
        return value

    @model_validator(mode="after")
    def _inside_footprint(self) -> Manifest:
        """What the policy trusts from a manifest must lie inside its own footprint."""
        for path in self.secret_files:
            if not any(within(path, p) for p in self.owns.paths):
                raise ValueError(f"secret_files: {path} is not inside owns.paths")
        for name, unit in self.units.items():
            if name not in self.owns.services:
                raise ValueError(f"units.{name}: not one of owns.services")
            if unit.user not in self.owns.users or unit.user == "root":
                raise ValueError(f"units.{name}.user: {unit.user} is not one of owns.users (never root)")
        for index, argv in enumerate(self.commands):
            if not argv or not argv[0].startswith("/"):
                raise ValueError(f"commands[{index}]: the program must be an absolute path")
        if self.name in self.requires:
            raise ValueError(f"requires: {self.name} cannot require itself")
        for name, param in self.parameters.items():
            for directory in param.within or []:
                if not any(within(directory, p) for p in self.owns.paths):
                    raise ValueError(f"parameters.{name}.within: {directory} is not inside owns.paths")
        return self


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


def _check_requirements(found: dict[str, Integration]) -> None:
    """Every ``requires`` names a known integration, and no chain of them comes back to where it started."""
    for integration in found.values():
        for needed in integration.manifest.requires:
            if needed not in found:
                raise IntegrationError(f"{integration.knowledge_dir / 'integration.yml'}: requires: unknown "
                                       f"integration {needed!r}", hint=f"known: {', '.join(sorted(found))}")

    def walk(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            cycle = " -> ".join((*path[path.index(name):], name))
            raise IntegrationError(f"{found[name].knowledge_dir / 'integration.yml'}: requires: a cycle ({cycle})")
        for needed in found[name].manifest.requires:
            walk(needed, (*path, name))

    for name in found:
        walk(name, ())


def _roots(paths: Sequence[Path] = ()) -> list[tuple[Path, str]]:
    """The folders to search, in order, each with its origin: the project, ``paths``, then plugins."""
    roots = [(PROJECT_ROOT, "project")]
    roots.extend((Path(path), str(path)) for path in paths)
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
    """Every integration that can be found, by name.

    ``roots`` replaces the search entirely (tests); otherwise the project, ``paths`` (the
    ``integrations_path`` setting) and the plugin packages are searched, the first folder to name an
    integration winning.
    """

    def __init__(self, roots: list[tuple[Path, str]] | None = None, *, paths: Sequence[Path] = ()) -> None:
        self._roots = roots if roots is not None else _roots(paths)

    @classmethod
    def for_settings(cls, settings: Settings) -> Catalog:
        """The catalog a command sees: the project's integrations, the ``integrations_path`` setting's, plugins'."""
        return cls(paths=settings.integrations_path)

    @cached_property
    def integrations(self) -> dict[str, Integration]:
        found: dict[str, Integration] = {}
        for root, origin in self._roots:
            for manifest_path in sorted((root / "knowledge").glob("*/integration.yml")):
                manifest = load_manifest(manifest_path)
                found.setdefault(manifest.name, Integration(manifest, root, origin))
        _check_requirements(found)
        return found

    def install_order(self, names: Sequence[str]) -> list[str]:
        """``names`` with every integration after the ones it requires (ties by name)."""
        wanted = set(names)
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order:
                return
            for needed in sorted(self.get(name).manifest.requires):
                if needed in wanted:
                    visit(needed)
            order.append(name)

        for name in sorted(wanted):
            visit(name)
        return order

    def get(self, name: str) -> Integration:
        try:
            return self.integrations[name]
        except KeyError:
            known = ", ".join(sorted(self.integrations)) or "none"
            raise IntegrationError(f"unknown integration {name!r}", hint=f"known: {known}") from None
