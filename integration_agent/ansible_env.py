"""The operator's Ansible environment, and the little intagent layers on top of it.

intagent runs Ansible inside the operator's own setup: their ``ansible.cfg`` (found the way Ansible
finds it: ``ANSIBLE_CONFIG``, ``./ansible.cfg``, ``~/.ansible.cfg``, ``/etc/ansible/ansible.cfg``),
their ``ANSIBLE_*`` environment and the connection and privilege options they would give
``ansible-playbook``. On top of that it sets only three kinds of thing:

- **required**: inventory errors are fatal, unmatched patterns are errors, plain machine-readable output
  (environment variables, so they win over any file);
- **defaults**: the settings of intagent's packaged ``ansible.cfg`` (SSH connection reuse, pipelining,
  quiet interpreter discovery, forks, timeout), each only where neither the operator's file nor their
  environment sets it;
- **roles**: the run's roles and the curated roles first on the roles path, the operator's after them.

Environment variables win over any ``ansible.cfg`` in Ansible, so a default is applied by setting its
variable only when the operator has not set the same setting in their file or environment.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .paths import ANSIBLE_CFG, ROLES_DIR

# Become and vault passwords for jobs without a terminal (never on the command line).
BECOME_PASSWORD_ENV = "INTAGENT_BECOME_PASSWORD"
VAULT_PASSWORD_ENV = "INTAGENT_VAULT_PASSWORD"

# Inventory safety and quiet, machine-readable output, whatever the operator's environment says.
REQUIRED_ENV = {
    "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
    "ANSIBLE_HOST_PATTERN_MISMATCH": "error",
    # A YAML key given twice (inventory, group_vars, -e @FILE) silently keeps one value: refuse it.
    "ANSIBLE_DUPLICATE_YAML_DICT_KEY": "error",
    "ANSIBLE_NOCOLOR": "True",
    "ANSIBLE_FORCE_COLOR": "False",
    "ANSIBLE_RETRY_FILES_ENABLED": "False",
    # intagent asks for these passwords itself (a prompt on a terminal, else the environment) and hands
    # them over in memory: ansible-playbook must never wait at a prompt nobody sees.
    "ANSIBLE_BECOME_ASK_PASS": "False",
    "ANSIBLE_ASK_VAULT_PASS": "False",
}

# intagent's defaults, by the environment variable that sets each, with every ini location Ansible reads
# the same setting from (the operator setting any of them keeps theirs). Values: the packaged ansible.cfg.
DEFAULT_SETTINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "ANSIBLE_PYTHON_INTERPRETER": (("defaults", "interpreter_python"),),
    "ANSIBLE_FORKS": (("defaults", "forks"),),
    "ANSIBLE_TIMEOUT": (("defaults", "timeout"),),
    "ANSIBLE_GATHERING": (("defaults", "gathering"),),
    "ANSIBLE_PIPELINING": (("defaults", "pipelining"), ("connection", "pipelining"),
                           ("ssh_connection", "pipelining")),
    "ANSIBLE_SSH_ARGS": (("ssh_connection", "ssh_args"),),
    "ANSIBLE_SSH_CONTROL_PATH_DIR": (("ssh_connection", "control_path_dir"),),
}
# Other names Ansible accepts for the same settings in the environment.
_ENV_ALIASES = {"ANSIBLE_PIPELINING": ("ANSIBLE_SSH_PIPELINING",), "ANSIBLE_TIMEOUT": ("ANSIBLE_SSH_TIMEOUT",)}
ANSIBLE_DEFAULT_ROLES_PATH = "~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles"


def find_user_config(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path | None:
    """The operator's ansible.cfg, searched in Ansible's own order; None when there is none.

    A ``./ansible.cfg`` in a world-writable directory is skipped, as Ansible skips it.
    """
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    candidates: list[Path] = []
    if env.get("ANSIBLE_CONFIG"):
        named = Path(env["ANSIBLE_CONFIG"]).expanduser()
        candidates.append(named / "ansible.cfg" if named.is_dir() else named)
    try:
        if not cwd.stat().st_mode & 0o002:
            candidates.append(cwd / "ansible.cfg")
    except OSError:
        pass
    candidates += [Path("~/.ansible.cfg").expanduser(), Path("/etc/ansible/ansible.cfg")]
    return next((c.resolve() for c in candidates if c.is_file()), None)


def _read_ini(path: Path | None) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    if path is not None:
        # Ansible itself reports a broken file, with its own message, when the run starts.
        with contextlib.suppress(configparser.Error, UnicodeDecodeError):
            parser.read(path, encoding="utf-8")
    return parser


def _intagent_defaults() -> dict[str, str]:
    packaged = _read_ini(ANSIBLE_CFG)
    values = {}
    for variable, places in DEFAULT_SETTINGS.items():
        for section, key in places:
            if packaged.has_option(section, key):
                values[variable] = packaged.get(section, key)
                break
    return values


@dataclass(frozen=True)
class AnsibleOptions:
    """What an operator gives ``ansible-playbook`` for inventory, connection and privilege.

    None of it is secret: become and vault passwords travel separately (``AnsibleSecrets``).
    """

    inventories: tuple[Path, ...] = ()
    user: str | None = None
    private_key: Path | None = None
    ssh_common_args: str | None = None
    become: bool = False
    become_user: str | None = None
    become_method: str | None = None
    vault_ids: tuple[str, ...] = ()
    vault_password_files: tuple[Path, ...] = ()
    forks: int | None = None
    verbosity: int = 0

    def playbook_args(self) -> list[str]:
        """The ``ansible-playbook`` flags for these options (inventory, forks and -v are passed apart)."""
        args: list[str] = []
        if self.user:
            args += ["--user", self.user]
        if self.private_key:
            args += ["--private-key", str(self.private_key)]
        if self.ssh_common_args:
            args += ["--ssh-common-args", self.ssh_common_args]
        if self.become:
            args.append("--become")
        if self.become_user:
            args += ["--become-user", self.become_user]
        if self.become_method:
            args += ["--become-method", self.become_method]
        return args + self.vault_args()

    def vault_args(self) -> list[str]:
        """The vault flags: every command that reads the inventory needs them too."""
        args: list[str] = []
        for vault_id in self.vault_ids:
            args += ["--vault-id", vault_id]
        for path in self.vault_password_files:
            args += ["--vault-password-file", str(path)]
        return args

    def recorded(self) -> dict[str, Any]:
        """What a run record keeps of them (nothing secret is here); ``from_record`` reads it back."""
        return {"inventories": [str(p) for p in self.inventories], "user": self.user,
                "private_key": str(self.private_key) if self.private_key else None,
                "ssh_common_args": self.ssh_common_args, "become": self.become, "become_user": self.become_user,
                "become_method": self.become_method, "vault_ids": list(self.vault_ids),
                "vault_password_files": [str(p) for p in self.vault_password_files], "forks": self.forks,
                "verbosity": self.verbosity}

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> AnsibleOptions:
        path = lambda v: Path(v) if v else None  # noqa: E731
        return cls(inventories=tuple(Path(p) for p in data.get("inventories") or ()), user=data.get("user"),
                   private_key=path(data.get("private_key")), ssh_common_args=data.get("ssh_common_args"),
                   become=bool(data.get("become")), become_user=data.get("become_user"),
                   become_method=data.get("become_method"), vault_ids=tuple(data.get("vault_ids") or ()),
                   vault_password_files=tuple(Path(p) for p in data.get("vault_password_files") or ()),
                   forks=data.get("forks"), verbosity=int(data.get("verbosity") or 0))


@dataclass(frozen=True)
class AnsibleSecrets:
    """The become and vault passwords of a run: kept in memory, handed to Ansible in 0600 files on a
    memory file system, masked in everything intagent writes or prints."""

    become_password: str | None = field(default=None, repr=False)
    vault_password: str | None = field(default=None, repr=False)
    # Secret values the inventory itself holds (a vault-decrypted license key): masked, never sent.
    masked: tuple[str, ...] = field(default=(), repr=False)

    def values(self) -> list[str]:
        return [v for v in (self.become_password, self.vault_password, *self.masked) if v]


@dataclass(frozen=True)
class AnsibleEnvironment:
    """The environment one Ansible process runs with, and where each piece came from."""

    env: dict[str, str]
    config_file: Path | None
    required: frozenset[str]
    defaults: frozenset[str]

    def origin(self, variable: str) -> str | None:
        """``intagent (required)`` or ``intagent (default)`` for what intagent set, else None."""
        if variable in self.required:
            return "intagent (required)"
        if variable in self.defaults:
            return "intagent (default)"
        return None


def user_setting(name: str, env: Mapping[str, str], config: configparser.ConfigParser,
                 places: tuple[tuple[str, str], ...]) -> str | None:
    """The operator's value of a setting: their environment first, then their file (None: unset)."""
    for variable in (name, *_ENV_ALIASES.get(name, ())):
        if variable in env:
            return env[variable]
    for section, key in places:
        if config.has_option(section, key):
            return config.get(section, key)
    return None


def layered(*, roles_path: Path | None = None, env: Mapping[str, str] | None = None,
            cwd: Path | None = None) -> AnsibleEnvironment:
    """The operator's Ansible environment with intagent's required settings and defaults on top.

    The result holds only the variables intagent sets (plus ``ANSIBLE_CONFIG`` naming the operator's file,
    so that Ansible finds the same one from the run's own working directory); merge it over the process
    environment.
    """
    env = os.environ if env is None else env
    config_file = find_user_config(env, cwd)
    config = _read_ini(config_file)
    out: dict[str, str] = {}
    defaults: set[str] = set()
    for variable, value in _intagent_defaults().items():
        if user_setting(variable, env, config, DEFAULT_SETTINGS[variable]) is None:
            out[variable] = value
            defaults.add(variable)
    theirs = user_setting("ANSIBLE_ROLES_PATH", env, config, (("defaults", "roles_path"),))
    if theirs is not None and "ANSIBLE_ROLES_PATH" not in env and config_file is not None:
        # Relative entries of a file are relative to the file, as Ansible reads them.
        theirs = os.pathsep.join(str(config_file.parent / Path(p).expanduser()) for p in theirs.split(os.pathsep) if p)
    roles = [str(p) for p in (roles_path, ROLES_DIR) if p is not None]
    out["ANSIBLE_ROLES_PATH"] = os.pathsep.join([*roles, theirs or ANSIBLE_DEFAULT_ROLES_PATH])
    out.update(REQUIRED_ENV)
    if config_file is not None:
        out["ANSIBLE_CONFIG"] = str(config_file)
    return AnsibleEnvironment(out, config_file, frozenset({*REQUIRED_ENV, "ANSIBLE_ROLES_PATH"}), frozenset(defaults))


def user_flag(name: str, places: tuple[tuple[str, str], ...], env: Mapping[str, str] | None = None,
              cwd: Path | None = None) -> bool:
    """Whether the operator's environment or file turns a boolean setting on (e.g. become_ask_pass)."""
    env = os.environ if env is None else env
    value = user_setting(name, env, _read_ini(find_user_config(env, cwd)), places)
    return str(value).strip().lower() in ("1", "true", "yes", "on", "y", "t")


def user_strategy(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str | None:
    """The strategy the operator's environment or file chooses (None: Ansible's default, linear)."""
    env = os.environ if env is None else env
    return user_setting("ANSIBLE_STRATEGY", env, _read_ini(find_user_config(env, cwd)), (("defaults", "strategy"),))


def has_vault_source(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> bool:
    """Whether the operator's environment or file names a vault password file or vault identities."""
    env = os.environ if env is None else env
    config = _read_ini(find_user_config(env, cwd))
    return any(user_setting(name, env, config, (("defaults", key),)) for name, key in (
        ("ANSIBLE_VAULT_PASSWORD_FILE", "vault_password_file"), ("ANSIBLE_VAULT_IDENTITY_LIST", "vault_identity_list")))


def describe(environment: AnsibleEnvironment, base_env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Every Ansible setting that differs from Ansible's default, with its value and where it came from
    (Ansible's own ``ansible-config dump --only-changed``, with intagent's variables named as such)."""
    from .executor import venv_path

    base = dict(os.environ if base_env is None else base_env)
    proc = subprocess.run(["ansible-config", "dump", "--only-changed", "--format", "json"], capture_output=True,
                          text=True, env={**base, **environment.env, "PATH": venv_path()}, timeout=60, check=False,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"ansible-config dump failed: {proc.stderr.strip()[:500]}")
    rows = []
    for item in json.loads(proc.stdout or "[]"):
        if not isinstance(item, dict) or "name" not in item:
            continue
        origin = str(item.get("origin") or "")
        if origin.startswith("env: "):
            variable = origin[5:]
            origin = environment.origin(variable) or f"environment variable {variable}"
        rows.append({"name": item["name"], "value": item.get("value"), "origin": origin or "ansible"})
    return rows


def quote_args(args: list[str]) -> str:
    """Flags as one command line string, the way ansible-runner splits it again (shlex)."""
    return shlex.join(args)
