"""Turning ``--var KEY=VALUE`` pairs, ``-e @FILE`` files, environment variables and prompts into role variables.

Values are checked against the manifest: unknown names, wrong types, values outside their pattern, missing
required values and secrets passed on the command line are errors (exit 5) raised before any playbook
starts. A secret's value is never quoted in an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .catalog import Integration, Parameter
from .errors import IntegrationError
from .secrets import MASK
from .yamlfile import read_mapping

Prompt = Callable[[str, Parameter], str | None]

_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "bool": (bool,), "list": (list,),
                                       "dict": (dict,)}


@dataclass(frozen=True)
class ResolvedParams:
    """Role variables for a run: ``extravars`` may be recorded; ``secrets`` never are."""

    extravars: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    def recorded(self) -> dict[str, Any]:
        """What a run record may show: values, with secrets masked."""
        return {**self.extravars, **{k: MASK for k in self.secrets}}


def parse_var(text: str) -> tuple[str, str]:
    """Split one ``KEY=VALUE`` argument."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise IntegrationError(f"bad --var {text!r}: expected KEY=VALUE")
    return key, value


def _coerce(name: str, param: Parameter, raw: Any, origin: str) -> Any:
    value = raw
    if isinstance(raw, str) and param.type != "str":
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
    if param.type == "int" and isinstance(value, bool):
        value = raw
    if not isinstance(value, _TYPES[param.type]):
        raise IntegrationError(f"{origin}: parameter {name!r} must be of type {param.type}, got {raw!r}")
    if param.choices is not None and value not in param.choices:
        raise IntegrationError(f"{origin}: parameter {name!r} must be one of {param.choices}, got {value!r}")
    if problem := param.problem(value):
        raise IntegrationError(f"{origin}: parameter {name!r}: {problem}")
    if param.required and value in ("", [], {}):
        raise IntegrationError(f"{origin}: parameter {name!r} is required and must not be empty")
    return value


def _secret(name: str, param: Parameter, raw: Any, origin: str) -> str:
    """A secret value checked against the parameter's pattern like any other, without ever quoting it."""
    value = str(raw)
    if value and param.problem(value):
        rule = f"its pattern {param.pattern!r}" if param.pattern else f"the directories {param.within}"
        raise IntegrationError(f"{origin}: secret parameter {name!r} does not match {rule} (value not shown)")
    return value


def read_vars_file(text: str) -> dict[str, Any]:
    """The mapping of a ``-e @FILE`` argument (YAML or JSON, like ansible-playbook's)."""
    return read_mapping(Path(text[1:]).expanduser(), IntegrationError, "parameters", what="-e: ")


def _given(integration: Integration, pairs: Iterable[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Parameters from ``KEY=VALUE`` and ``@FILE`` arguments, later ones winning; secrets are accepted from a
    file (it is not the command line) and never from ``KEY=VALUE``."""
    params = integration.manifest.parameters
    by_role_var = {integration.role_var(name): name for name in params}
    given: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for text in pairs:
        from_file = text.startswith("@")
        items = read_vars_file(text).items() if from_file else [parse_var(text)]
        for key, raw in items:
            key = by_role_var.get(str(key), str(key))
            origin = f"-e {text}: {key}" if from_file else f"--var {key}"
            if key not in params:
                known = ", ".join(sorted(params)) or "none"
                raise IntegrationError(f"{origin}: {integration.name} has no parameter {key!r}", hint=f"known: {known}")
            if params[key].secret and not from_file:
                where = f"set {params[key].env}" if params[key].env else "enter it at the prompt"
                raise IntegrationError(f"--var {key}: {key!r} is a secret and is not accepted on the command line",
                                       hint=f"{where}, or put it in a file given as -e @FILE")
            if params[key].secret:
                secrets[key] = _secret(key, params[key], raw, origin)
            else:
                given[key] = _coerce(key, params[key], raw, origin)
    return given, secrets


def resolve(integration: Integration, pairs: Iterable[str] = (), *, env: Mapping[str, str] | None = None,
            prompt: Prompt | None = None, require: bool = True, provided: Iterable[str] = ()) -> ResolvedParams:
    """Validate ``pairs`` against the manifest and collect secrets from the environment or a prompt.

    ``require=False`` is for entry points (verify, uninstall) that do not need required parameters.
    ``provided`` names the role variables the inventory already defines for every target (a vault-encrypted
    group_vars value, say): a required parameter found there needs no other source.
    """
    env = os.environ if env is None else env
    params = integration.manifest.parameters
    provided = set(provided)
    given, given_secrets = _given(integration, pairs)

    extravars: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for name, param in params.items():
        var = integration.role_var(name)
        if param.secret:
            value = given_secrets.get(name)
            if not value and param.env and env.get(param.env):
                value = _secret(name, param, env[param.env], f"environment variable {param.env}")
            if not value and var in provided:
                continue  # the inventory's own value (often vault-encrypted) reaches the role
            # Only a required secret is asked for: an optional one (a proxy) left out keeps the role's default.
            if not value and prompt is not None and require and param.required:
                value = prompt(name, param)
                value = value and _secret(name, param, value, "the prompt")
            if value:
                secrets[var] = str(value)
            elif param.required and require:
                how = f"set the environment variable {param.env}" if param.env else "run on a terminal to be prompted"
                raise IntegrationError(f"missing required secret parameter {name!r} of {integration.name}",
                                       hint=how)
            continue
        if name in given:
            extravars[var] = given[name]
        elif param.required and require and var not in provided:
            raise IntegrationError(f"missing required parameter {name!r} of {integration.name}",
                                   hint=f"pass --var {name}=VALUE")
    return ResolvedParams(extravars, secrets)
