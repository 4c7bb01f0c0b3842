"""Where the project's own files live (roles, templates, knowledge, ansible.cfg).

In a checkout, and in an editable install (``pip install -e .``), they sit next to the package at the
repository root. A built wheel carries a copy of them inside the package, in ``integration_agent/_data/``
(the build hook in ``setup.py`` puts them there); that folder never exists in a checkout, so its presence
decides which of the two layouts this is.
"""

from __future__ import annotations

import os
from pathlib import Path

# What intagent reads at run time from PROJECT_ROOT: every one of them ships in the wheel.
SHIPPED = ("ansible.cfg", "roles", "playbooks", "playbook_templates", "knowledge", "evals")
# Where a wheel keeps them, relative to the package.
DATA_DIRNAME = "_data"

PACKAGE_DIR = Path(__file__).resolve().parent
_INSTALLED = PACKAGE_DIR / DATA_DIRNAME
PROJECT_ROOT = _INSTALLED if (_INSTALLED / "ansible.cfg").is_file() else PACKAGE_DIR.parent
ANSIBLE_CFG = PROJECT_ROOT / "ansible.cfg"
ROLES_DIR = PROJECT_ROOT / "roles"
TEMPLATES_DIR = PROJECT_ROOT / "playbook_templates"
KNOWLEDGE_DIR = PROJECT_ROOT / "knowledge"


def default_learned_dir() -> Path:
    """Where learned notes go by default: ``$XDG_DATA_HOME/intagent/learned`` (``~/.local/share`` when the
    variable is unset). Never inside the package: an installed intagent's folder may be read-only or shared."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "intagent" / "learned"
