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
# intagent's strategies: Ansible's and Mitogen's with what intagent changes (see each file there).
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


def strategy_env(strategy: str | None = None, mitogen: bool = True) -> dict[str, str]:
    """The environment that makes Ansible run intagent's strategy plugins, for the operator's ``strategy``.

    With Mitogen, its variant of that strategy: ``free`` becomes ``intagent_mitogen_free``, anything else
    ``intagent_mitogen_linear``. Without, Ansible's ``linear`` or ``free`` with play-level modes
    (``intagent_linear``, ``intagent_free``); another strategy of the operator's is left alone (empty: no
    play-level modes, so intagent runs its dry run as a playbook of its own)."""
    if mitogen:
        assert importlib.util.find_spec("ansible_mitogen") is not None, problem()
        name = "intagent_mitogen_free" if strategy == "free" else "intagent_mitogen_linear"
    elif strategy in (None, "", "linear", "ansible.builtin.linear", "free", "ansible.builtin.free"):
        name = "intagent_free" if strategy and strategy.endswith("free") else "intagent_linear"
    else:
        return {}
    return {"ANSIBLE_STRATEGY_PLUGINS": str(STRATEGY_PLUGINS), "ANSIBLE_STRATEGY": name}
