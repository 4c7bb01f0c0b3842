"""The JSON a model must answer with (``intagent schema generation`` prints it).

The model never writes YAML: it returns ordered tasks, each naming one module from an allowlist with
its arguments and a small set of safe task keywords, plus the knowledge chunks it relies on. intagent
validates this shape first (gate 1), then applies its own policy (gate 2) before rendering anything.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PROMPT_VERSION = "2026-11-25.1"

# Modules a generated plan may use at all; an integration's manifest can narrow this further.
MODULE_ALLOWLIST: frozenset[str] = frozenset({
    "ansible.builtin.apt", "ansible.builtin.apt_key", "ansible.builtin.apt_repository", "ansible.builtin.dnf",
    "ansible.builtin.yum_repository", "ansible.builtin.rpm_key", "ansible.builtin.package",
    "ansible.builtin.package_facts", "ansible.builtin.service_facts", "ansible.builtin.systemd_service",
    "ansible.builtin.service", "ansible.builtin.copy", "ansible.builtin.file",
    "ansible.builtin.lineinfile", "ansible.builtin.blockinfile", "ansible.builtin.stat",
    "ansible.builtin.get_url", "ansible.builtin.unarchive", "ansible.builtin.user", "ansible.builtin.group",
    "ansible.builtin.uri", "ansible.builtin.wait_for", "ansible.builtin.assert", "ansible.builtin.fail",
    "ansible.builtin.set_fact", "ansible.builtin.debug", "ansible.builtin.getent", "ansible.builtin.command",
    "ansible.builtin.slurp",
    "intagent.systemd_unit",  # intagent's own unit template (rendered as a copy task, see render.py)
})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class GeneratedTask(_Strict):
    """One task; intagent renders it to YAML. Only these keywords exist: anything else is rejected."""

    @property
    def register(self) -> str | None:
        """The registered variable name (the field is ``register_``: BaseModel has a ``register``)."""
        return self.register_

    name: str = Field(min_length=3, max_length=120, description="What the task does, in words.")
    module: str = Field(description="Fully qualified module name from the allowlist.")
    args: dict[str, Any] = Field(default_factory=dict, description="The module's arguments.")
    when: str | None = Field(None, max_length=400, description="A condition (Jinja expression without braces).")
    register_: str | None = Field(None, alias="register", pattern=r"^[a-z][a-z0-9_]{0,60}$",
                                  description="Variable to register the result in.")
    notify: list[str] = Field(default_factory=list, max_length=5, description="Handler names to notify.")
    loop: list[Any] | str | None = Field(None, description="Items to loop over.")
    become: bool | None = None
    changed_when: str | bool | None = Field(None, description="When the task counts as a change.")
    failed_when: str | bool | None = Field(None, description="When the task counts as failed.")
    creates: str | None = Field(None, description="command only: the file whose presence means done.")
    removes: str | None = Field(None, description="command only: the file whose absence means done.")
    no_log: bool | None = Field(None, description="Must be true for any task that handles a secret.")
    diff: bool | None = Field(None, description="Must be false for any task that handles a secret.")
    citations: list[str] = Field(default_factory=list, max_length=10,
                                 description="Ids of the knowledge chunks this task relies on.")
    justification: str | None = Field(None, max_length=400,
                                      description="Required for command: why no module fits.")


class GeneratedPlan(_Strict):
    """Install, verify and uninstall plans for one integration on one platform."""

    integration: str
    platform: str = Field(description="Target platform, for example 'debian-12'.")
    install: list[GeneratedTask] = Field(min_length=1, max_length=40)
    verify: list[GeneratedTask] = Field(min_length=1, max_length=20,
                                        description="Must set NAME_evidence (a dict) before asserting.")
    uninstall: list[GeneratedTask] = Field(min_length=1, max_length=30)
    handlers: list[GeneratedTask] = Field(default_factory=list, max_length=10)
    notes: str | None = Field(None, max_length=2000)


def json_schema() -> dict[str, Any]:
    """The published schema of a generation answer."""
    schema = GeneratedPlan.model_json_schema(by_alias=True)
    schema["$id"] = f"https://intagent.invalid/schema/generation/{PROMPT_VERSION}"
    return schema
