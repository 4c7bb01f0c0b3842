"""Settings: defaults < workflow_config.yaml < INTAGENT_* environment < command-line flags.

The file is ``--config PATH`` when given, else ``./workflow_config.yaml``, else
``$XDG_CONFIG_HOME/intagent/workflow_config.yaml``. Environment variables name a key by its dotted
path in upper case with ``_`` for the dot: ``INTAGENT_LAB_HOSTS=5`` sets ``lab.hosts``. Every layer is
validated once, together, and an error names the key and the layer (file or variable) it came from.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from ipaddress import IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo

from .ansible_env import BECOME_PASSWORD_ENV, VAULT_PASSWORD_ENV
from .errors import ConfigError
from .lab.layout import DEFAULT_RELEASE, RELEASES
from .paths import KNOWLEDGE_DIR, default_learned_dir
from .rollout import BATCH_HELP, Rollout, parse_batch, parse_max_fail
from .yamlfile import read_mapping

CONFIG_FILE_NAME = "workflow_config.yaml"
ENV_PREFIX = "INTAGENT_"
# Variables with the prefix that are not settings keys.
# Become and vault passwords for jobs without a terminal are secrets, never settings.
RESERVED_ENV = frozenset({"INTAGENT_CONFIG", BECOME_PASSWORD_ENV, VAULT_PASSWORD_ENV})

UserPath = Annotated[Path, AfterValidator(lambda p: p.expanduser())]


def _state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")


def _config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabSettings(_Strict):
    """Where and how the lab of disposable test hosts is built."""

    state_dir: UserPath = Field(Path("/var/lib/intagent/lab"), description="Running lab: overlays, keys, inventory.")
    cache_dir: UserPath = Field(Path("/var/cache/intagent/lab"), description="Base image and package mirror cache.")
    subnet: IPv4Network = Field(IPv4Network("10.231.0.0/24"), description="Private subnet of the lab bridge.")
    hosts: int = Field(3, ge=1, le=200, description="Hosts that `lab up` creates when --hosts is not given.")
    suite: Literal[RELEASES] = Field(  # type: ignore[valid-type]
        DEFAULT_RELEASE,
        description=f"Debian release of lab hosts when `lab up` gets no --release ({', '.join(RELEASES)}).")
    debian_mirror: str | None = Field(None, description="Debian mirror for the base image; default: apt's own.")
    mirror_port: int = Field(8080, ge=1024, le=65535, description="Port of the package mirror on the bridge.")
    mirror_packages: list[str] = Field(
        default_factory=lambda: [
            "prometheus-node-exporter", "zabbix-agent", "collectd-core", "hello",
            # The services that discovery finds, and their exporters.
            "nginx", "mariadb-server", "postgresql", "redis-server", "prometheus-nginx-exporter",
            "prometheus-mysqld-exporter", "prometheus-postgres-exporter", "prometheus-redis-exporter",
        ],
        description="Debian packages (with their dependencies) served to lab hosts.",
    )
    boot_timeout: float = Field(60.0, gt=0, description="Seconds to wait for a host to answer SSH.")


def _command(value: str) -> str:
    """A command line that splits into at least a program (it is run without a shell)."""
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise ValueError(f"not a valid command line: {exc}") from None
    if not words:
        raise ValueError("empty command")
    return value


def _mitogen_usable(wanted: bool) -> bool:
    from .mitogen import problem

    if wanted and (why := problem()):
        raise ValueError(why)
    return wanted


class AnsibleSettings(_Strict):
    """How intagent drives Ansible."""

    forks: int | None = Field(None, ge=1, le=500, description=(
        "Hosts changed in parallel; default: your Ansible configuration's forks, else every host of the batch "
        "at once, up to 50."))
    timeout: int | None = Field(None, ge=1, description=(
        "SSH connection timeout in seconds; default: your Ansible configuration's timeout, else 30."))
    package_lock_timeout: int = Field(60, ge=0, le=3600, description=(
        "Seconds the package manager waits for its lock on a host (apt's lock_timeout) in each apply attempt; "
        "a lock still held then is retried by intagent, with backoff, three times."))
    mitogen: Annotated[bool, AfterValidator(_mitogen_usable)] = Field(True, description=(
        "Run playbooks with Mitogen's strategy: one persistent Python per host instead of one per task "
        "(see docs/benchmarks.md); false: Ansible's own strategy."))
    executor: Literal["local", "streaming"] = Field(
        "local", description="local: Ansible runs here; streaming: each playbook is streamed to worker_command.")
    worker_command: Annotated[str, AfterValidator(_command)] = Field(
        "ansible-runner worker", description="The streaming executor's worker, split like a shell would.")


class LLMSettings(_Strict):
    """The model endpoint for generated playbooks (any OpenAI-compatible server).

    The API key is read from OPENAI_API_KEY only: it is a secret and never belongs in a settings file.
    """

    base_url: str | None = Field(None, description="Endpoint, e.g. http://127.0.0.1:8000/v1; default OPENAI_BASE_URL.")
    model: str | None = Field(None, description="Model name (INTAGENT_LLM_MODEL).")
    deadline: float = Field(300.0, gt=0, description="Seconds for the whole generate-and-repair loop.")
    max_repairs: int = Field(3, ge=0, le=10, description="Repair rounds after the first answer.")
    stream: bool = Field(False, description="Use streamed responses.")
    lint: bool = Field(True, description="Run ansible-lint (production profile) on generated roles.")
    fallback_to_curated: bool = Field(False, description="Use the curated role when generation gives up.")
    sandbox: Literal["auto", "on", "off"] = Field(
        "auto", description="Apply, verify and uninstall a generated plan on a lab sandbox host and audit it from "
        "outside before it may touch a host: auto runs it where the lab can run (root, lab tools) and says so "
        "where it cannot; on requires it; off skips it.")


def _batch_list(value: Any) -> Any:
    """A list of batch sizes; ``"1,25%,100%"`` (handy in an environment variable) is split at the commas."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [value] if isinstance(value, int) and not isinstance(value, bool) else value


class RolloutSettings(_Strict):
    """Rolling batches for install and uninstall (``--batch`` and ``--max-fail`` win over these)."""

    batches: Annotated[list[int | str], BeforeValidator(_batch_list),
                       AfterValidator(lambda sizes: [parse_batch(b) for b in sizes])] = Field(
        default_factory=list, description=f"Batch sizes in order, the last one repeating; each is {BATCH_HELP}. "
                                          "Empty: every host in one batch.")
    max_fail: Annotated[float | None, BeforeValidator(lambda v: None if v is None else parse_max_fail(v))] = Field(
        None, description="Percentage of a batch that may fail before the rollout stops; default with batches: 0.")

    def rollout(self) -> Rollout:
        return Rollout(tuple(self.batches), self.max_fail)


def _path_list(value: Any) -> Any:
    """A list of paths; a string (an environment variable's value) is split at ``os.pathsep``, like PATH,
    and an empty one (or null) is no path."""
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        return [part for part in str(value).split(os.pathsep) if part]
    return value


def _directories(paths: list[Path]) -> list[Path]:
    """Every path names an existing directory: a typo must not hide an integration without a word."""
    missing = [str(p) for p in paths if not p.is_dir()]
    if missing:
        raise ValueError(f"not a directory: {', '.join(missing)}")
    return paths


def _writable_directory(path: Path | None) -> Path | None:
    """An existing directory intagent may write in (it is only used where /dev/shm is missing: say so now)."""
    if path is not None and not (path.is_dir() and os.access(path, os.W_OK | os.X_OK)):
        raise ValueError(f"{path} is not a writable directory")
    return path


def _not_a_knowledge_folder(path: Path, info: ValidationInfo) -> Path:
    """Learned notes sit in ``<learned_dir>/NAME/``: pointed at a ``knowledge`` folder itself, they would mix
    with (and be mistaken for) the curated documents of ``knowledge/NAME/``."""
    roots = [KNOWLEDGE_DIR, *(root / "knowledge" for root in info.data.get("integrations_path") or [])]
    if any(path.resolve() == root.resolve() for root in roots):
        raise ValueError(f"{path} holds the curated documents (knowledge/NAME/): use a folder of its own, "
                         "such as knowledge/learned")
    return path


class Settings(_Strict):
    """All of intagent's settings."""

    runs_dir: UserPath = Field(default_factory=lambda: _state_home() / "intagent" / "runs",
                           description="Where each run keeps its directory.")
    integrations_path: Annotated[list[UserPath], BeforeValidator(_path_list), AfterValidator(_directories)] = Field(
        default_factory=list, description="More folders laid out like the project's (knowledge/NAME/, roles/NAME/), "
        "searched after it and before plugin packages; INTAGENT_INTEGRATIONS_PATH separates them with "
        f"{os.pathsep!r}.")
    learned_dir: Annotated[UserPath, AfterValidator(_not_a_knowledge_folder)] = Field(
        default_factory=default_learned_dir, description="Where learned failure notes are kept, one folder per "
        "integration (<learned_dir>/NAME/<note>.md); default $XDG_DATA_HOME/intagent/learned.")
    secrets_dir: Annotated[UserPath | None, AfterValidator(_writable_directory)] = Field(
        None, description="Folder for the files that hold a run's secrets when /dev/shm is missing or not "
        "writable; without it such a run is refused, since the system's temporary folder is often a disk.")
    lab: LabSettings = Field(default_factory=LabSettings)
    ansible: AnsibleSettings = Field(default_factory=AnsibleSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    learn: bool = Field(True, description="Record classified failures as knowledge of the integration.")


def find_config_file(explicit: Path | None, cwd: Path | None = None) -> Path | None:
    """Return the settings file to read, or None. An explicit path must exist."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file not found: {explicit}")
        return explicit
    for candidate in ((cwd or Path.cwd()) / CONFIG_FILE_NAME, _config_home() / "intagent" / CONFIG_FILE_NAME):
        try:
            if candidate.is_file():
                return candidate
        except OSError as exc:
            raise ConfigError(f"cannot read config file {candidate}: {exc.strerror}") from None
    return None


def _read_file(path: Path) -> dict[str, Any]:
    return read_mapping(path, ConfigError, "settings")


def _env_key_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """Map every settings key to its environment variable name."""
    out: dict[str, tuple[str, ...]] = {}
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.update(_env_key_paths(ann, path))
        else:
            out[ENV_PREFIX + "_".join(path).upper()] = path
    return out


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
        if not isinstance(tree, dict):
            return
    tree[path[-1]] = value


def _merge(base: dict[str, Any], top: Mapping[str, Any], sources: dict[tuple[str, ...], str], label: str,
           prefix: tuple[str, ...] = ()) -> None:
    for key, value in top.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, sources, label, path)
        else:
            base[key] = value
            sources[path] = label


def _record_sources(tree: Mapping[str, Any], label: str, sources: dict[tuple[str, ...], str],
                    prefix: tuple[str, ...] = ()) -> None:
    for key, value in tree.items():
        path = (*prefix, str(key))
        sources[path] = label
        if isinstance(value, Mapping):
            _record_sources(value, label, sources, path)


def load_settings(config: Path | None = None, *, env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None, cwd: Path | None = None) -> Settings:
    """Load, merge and validate every settings layer; raise ConfigError naming the key and its origin."""
    env = os.environ if env is None else env
    if config is None and env.get("INTAGENT_CONFIG"):
        config = Path(env["INTAGENT_CONFIG"])
    merged: dict[str, Any] = {}
    sources: dict[tuple[str, ...], str] = {}

    path = find_config_file(config, cwd)
    if path is not None:
        file_data = _read_file(path)
        _record_sources(file_data, str(path), sources)
        _merge(merged, file_data, sources, str(path))

    known = _env_key_paths(Settings)
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in RESERVED_ENV:
            continue
        if name not in known:
            raise ConfigError(f"environment variable {name}: unknown setting "
                              f"(known: {', '.join(sorted(known))})")
        try:
            value = yaml.safe_load(env[name]) if env[name] != "" else None
        except yaml.YAMLError:
            value = env[name]
        _set(merged, known[name], value)
        sources[known[name]] = f"environment variable {name}"

    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set(merged, tuple(dotted.split(".")), value)
            sources[tuple(dotted.split("."))] = "command line"

    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, sources)) from None


def _describe(exc: ValidationError, sources: Mapping[tuple[str, ...], str]) -> str:
    """One line per problem: origin: key: what is wrong."""
    lines = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        origin = next((sources[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in sources), "settings")
        key = ".".join(loc)
        if err["type"] == "extra_forbidden":
            lines.append(f"{origin}: unknown key '{key}'")
        else:
            lines.append(f"{origin}: {key}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(lines)
