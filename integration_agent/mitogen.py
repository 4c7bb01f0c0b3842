"""Mitogen for Ansible, intagent's default strategy (setting ``ansible.mitogen``; false: Ansible's own).

Mitogen replaces Ansible's per-task module transfer and remote interpreter start with one persistent
interpreter per host, which cuts the time of every task that runs a module to about a third. It is a
dependency of intagent; intagent runs it through its own strategy plugins (``ansible_plugins/strategy``),
which are Mitogen's without its CPU pinning. Each Mitogen release supports a range of ansible-core
releases: intagent checks that Mitogen is installed and supports this ansible-core when the setting is
read, so a run never starts with a strategy Ansible cannot load.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

# The ansible-core releases the supported Mitogen release (0.3.x) runs on, as (major, minor), inclusive.
SUPPORTED = ((2, 10), (2, 19))
# intagent's variants of Mitogen's strategies (what they change: intagent_mitogen_linear.py in that folder).
STRATEGY_PLUGINS = Path(__file__).resolve().parent / "ansible_plugins" / "strategy"
INSTALL_HINT = "pip install 'mitogen>=0.3.54,<0.4', or set ansible.mitogen to false"


def ansible_core_version() -> tuple[int, int]:
    from ansible.release import __version__

    major, minor = __version__.split(".")[:2]
    return int(major), int(minor)


def problem() -> str | None:
    """Why Mitogen cannot run here (None: it can)."""
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or not spec.submodule_search_locations:
        return f"Mitogen is not installed ({INSTALL_HINT})"
    core = ansible_core_version()
    low, high = SUPPORTED
    if not low <= core <= high:
        return (f"Mitogen supports ansible-core {low[0]}.{low[1]} to {high[0]}.{high[1]}; this is ansible-core "
                f"{core[0]}.{core[1]} (set ansible.mitogen to false, or install an ansible-core Mitogen supports)")
    return None


def strategy_env(strategy: str | None = None) -> dict[str, str]:
    """The environment that makes Ansible run with Mitogen: its strategy plugins, and its variant of the
    operator's strategy (``free`` becomes ``intagent_mitogen_free``; anything else ``intagent_mitogen_linear``)."""
    assert importlib.util.find_spec("ansible_mitogen") is not None, problem()
    return {"ANSIBLE_STRATEGY_PLUGINS": str(STRATEGY_PLUGINS),
            "ANSIBLE_STRATEGY": "intagent_mitogen_free" if strategy == "free" else "intagent_mitogen_linear"}
