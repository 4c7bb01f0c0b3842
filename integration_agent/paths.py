"""Where the project's own files live (roles, templates, knowledge, ansible.cfg)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
ANSIBLE_CFG = PROJECT_ROOT / "ansible.cfg"
ROLES_DIR = PROJECT_ROOT / "roles"
TEMPLATES_DIR = PROJECT_ROOT / "playbook_templates"
KNOWLEDGE_DIR = PROJECT_ROOT / "knowledge"
