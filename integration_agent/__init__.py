"""intagent: install, verify and remove monitoring integrations on fleets of hosts with Ansible.

The public API is re-exported here lazily, so that ``import integration_agent`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"  # the only place: pyproject.toml reads it (setuptools dynamic version)

_EXPORTS = {
    "Settings": ".settings", "load_settings": ".settings",
    "Lab": ".lab", "Executor": ".executor", "PlaybookRun": ".executor", "HostRun": ".executor",
    "ping": ".api", "plan": ".api", "install": ".api", "verify": ".api", "uninstall": ".api",
    "run_action": ".api", "resume": ".api", "generate": ".api", "CustomStep": ".lifecycle", "StepView": ".lifecycle",
    "Catalog": ".catalog", "RunReport": ".lifecycle",
    "discover": ".discovery", "install_recommended": ".discovery", "DiscoveryReport": ".discovery",
    "AnsibleOptions": ".ansible_env", "AnsibleSecrets": ".ansible_env",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'integration_agent' has no attribute {name!r}")
