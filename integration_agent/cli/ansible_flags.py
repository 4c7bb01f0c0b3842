"""The flags an operator gives ``ansible-playbook``, on every command that runs Ansible.

``@ansible_flags`` adds them to a command's signature (typer reads ``__signature__``) and hands the command
one ``AnsibleOptions`` and one ``AnsibleSecrets`` instead. Become and vault passwords are never taken from
the command line: a hidden prompt on a terminal (``-K``, ``-J``, or the operator's ``become_ask_pass`` /
``ask_vault_pass``), else ``INTAGENT_BECOME_PASSWORD`` / ``INTAGENT_VAULT_PASSWORD``.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ..ansible_env import BECOME_PASSWORD_ENV, VAULT_PASSWORD_ENV, AnsibleOptions, AnsibleSecrets, user_flag
from ..errors import IntegrationError
from .common import interactive

_FLAGS: dict[str, tuple[Any, Any]] = {
    "user": (Annotated[str | None, typer.Option("--user", "-u", metavar="USER",
                                                help="Connect as this user (remote_user).")], None),
    "private_key": (Annotated[Path | None, typer.Option("--private-key", "--key-file", metavar="PATH",
                                                         help="SSH private key file.")], None),
    "ssh_common_args": (Annotated[str | None, typer.Option(
        "--ssh-common-args", metavar="ARGS",
        help="Extra arguments for ssh, sftp and scp (e.g. '-o ProxyJump=bastion').")], None),
    "become": (Annotated[bool, typer.Option("--become", "-b", help="Run the integration's tasks with become.")], False),
    "become_user": (Annotated[str | None, typer.Option("--become-user", metavar="USER",
                                                       help="Become this user.")], None),
    "become_method": (Annotated[str | None, typer.Option("--become-method", metavar="METHOD",
                                                         help="Become method (sudo, su, ...).")], None),
    "ask_become_pass": (Annotated[bool, typer.Option(
        "--ask-become-pass", "-K", help=f"Ask for the become password (off a terminal: ${BECOME_PASSWORD_ENV}).")],
                        False),
    "vault_id": (Annotated[list[str] | None, typer.Option(
        "--vault-id", metavar="[LABEL@]SOURCE", help="Vault identity, e.g. prod@~/.vault-pass (repeatable).")], None),
    "vault_password_file": (Annotated[list[Path] | None, typer.Option(
        "--vault-password-file", "--vault-pass-file", metavar="PATH",
        help="Vault password file or script (repeatable).")], None),
    "ask_vault_pass": (Annotated[bool, typer.Option(
        "--ask-vault-pass", "-J", help=f"Ask for the vault password (off a terminal: ${VAULT_PASSWORD_ENV}).")], False),
    "forks": (Annotated[int | None, typer.Option("--forks", "-f", metavar="N", min=1, max=500,
                                                    help="Hosts changed in parallel.")], None),
    "verbose": (Annotated[int, typer.Option("--verbose", "-v", count=True,
                                            help="Show Ansible's own output (-vvvv for the most).")], 0),
}


def ansible_flags(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the Ansible flags to ``command``, which takes ``inventory`` (a list) and the keyword arguments
    ``ansible`` and ``ansible_secrets``."""
    signature = inspect.signature(command, eval_str=True)
    kept = [p for name, p in signature.parameters.items() if name not in ("ansible", "ansible_secrets")]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
             for name, (annotation, default) in _FLAGS.items()]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in _FLAGS}
        kwargs["ansible"], kwargs["ansible_secrets"] = options_from_flags(given, kwargs.get("inventory") or ())
        return command(*args, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
    return wrapper


def options_from_flags(given: dict[str, Any], inventories: Any) -> tuple[AnsibleOptions, AnsibleSecrets]:
    """The options and secrets the flags ask for (prompting or reading the environment for passwords)."""
    options = AnsibleOptions(
        inventories=tuple(inventories), user=given["user"], private_key=given["private_key"],
        ssh_common_args=given["ssh_common_args"], become=given["become"], become_user=given["become_user"],
        become_method=given["become_method"], vault_ids=tuple(given["vault_id"] or ()),
        vault_password_files=tuple(given["vault_password_file"] or ()), forks=given["forks"],
        verbosity=given["verbose"])
    for path in options.vault_password_files:
        if not path.exists():
            raise IntegrationError(f"--vault-password-file {path}: no such file")
    asks_become = given["ask_become_pass"] or user_flag(
        "ANSIBLE_BECOME_ASK_PASS", (("privilege_escalation", "become_ask_pass"),))
    asks_vault = given["ask_vault_pass"] or user_flag("ANSIBLE_ASK_VAULT_PASS", (("defaults", "ask_vault_pass"),))
    secrets = AnsibleSecrets(become_password=_password("become", BECOME_PASSWORD_ENV, asks_become),
                             vault_password=_password("vault", VAULT_PASSWORD_ENV, asks_vault))
    return options, secrets


def _password(what: str, variable: str, asked: bool) -> str | None:
    """The environment's password, else a hidden prompt when asked for on a terminal; never argv."""
    value = os.environ.get(variable)
    if value:
        return value
    if not asked:
        return None
    if interactive():
        return typer.prompt(f"{what.upper()} password", hide_input=True, err=True) or None
    raise IntegrationError(f"a {what} password is needed and there is no terminal to ask on",
                           hint=f"set the environment variable {variable}")


def become_and_vault_secrets() -> AnsibleSecrets:
    """The passwords for a command without the flags (resume): the environment, or a prompt when the
    operator's Ansible configuration asks for one."""
    flags = {name: default for name, (_annotation, default) in _FLAGS.items()}
    return options_from_flags(flags, ())[1]
