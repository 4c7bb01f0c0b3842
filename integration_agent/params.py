"""Turning ``--var KEY=VALUE`` pairs, environment variables and prompts into role variables.

Values are checked against the manifest: unknown names, wrong types, missing required values and
secrets passed on the command line are errors (exit 5) raised before any playbook starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .catalog import Integration, Parameter
from .errors import IntegrationError

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
        return {**self.extravars, **{k: "********" for k in self.secrets}}


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
    return value


def resolve(integration: Integration, pairs: Iterable[str] = (), *, env: Mapping[str, str] | None = None,
            prompt: Prompt | None = None, require: bool = True) -> ResolvedParams:
    """Validate ``pairs`` against the manifest and collect secrets from the environment or a prompt.

    ``require=False`` is for entry points (verify, uninstall) that do not need required parameters.
    """
    env = os.environ if env is None else env
    params = integration.manifest.parameters
    given: dict[str, Any] = {}
    for text in pairs:
        key, raw = parse_var(text)
        if key not in params:
            known = ", ".join(sorted(params)) or "none"
            raise IntegrationError(f"--var {key}: {integration.name} has no parameter {key!r}", hint=f"known: {known}")
        if params[key].secret:
            where = f"set {params[key].env}" if params[key].env else "enter it at the prompt"
            raise IntegrationError(f"--var {key}: {key!r} is a secret and is not accepted on the command line",
                                   hint=f"{where} instead")
        given[key] = _coerce(key, params[key], raw, f"--var {key}")

    extravars: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for name, param in params.items():
        var = integration.role_var(name)
        if param.secret:
            value = env.get(param.env) if param.env else None
            if not value and prompt is not None and require:
                value = prompt(name, param)
            if value:
                secrets[var] = str(value)
            elif param.required and require:
                how = f"set the environment variable {param.env}" if param.env else "run on a terminal to be prompted"
                raise IntegrationError(f"missing required secret parameter {name!r} of {integration.name}",
                                       hint=how)
            continue
        if name in given:
            extravars[var] = given[name]
        elif param.required and require:
            raise IntegrationError(f"missing required parameter {name!r} of {integration.name}",
                                   hint=f"pass --var {name}=VALUE")
    return ResolvedParams(extravars, secrets)
