"""Rendering playbooks from the Jinja2 templates in ``playbook_templates/``."""

from __future__ import annotations

from typing import Any

from .paths import TEMPLATES_DIR


def render(template: str, **context: Any) -> str:
    """Render ``playbook_templates/<template>`` with ``context``; undefined names are errors."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False, trim_blocks=True, lstrip_blocks=True)
    return env.get_template(template).render(**context)


DEFAULT_FACTS = ("min",)  # the platform, distribution, architecture, Python: what the curated roles read


def entry_playbook(role: str, entry: str, facts: tuple[str, ...] | list[str] = DEFAULT_FACTS, *, check: bool = False,
                   validate: bool = True, tasks_from: str | None = None) -> str:
    """The playbook intagent runs for one entry point of ``role``, gathering the fact subsets ``facts``.

    ``check``: a dry-run play (check and diff mode set by the play, for a playbook that applies after it);
    ``validate=False``: no argument spec check, for a later play of the entry point a first play checked;
    ``tasks_from``: the role's task file to import, when it is not the entry point's own (the changes of a main
    entry point whose preflight checks an earlier play ran)."""
    tasks_from = tasks_from or entry
    title = f"intagent {role} {entry}" + (" (dry run)" if check else "") + (
        f" ({tasks_from}.yml, its preflight checks passed in the dry run)" if tasks_from != entry else "")
    return render("role.yml.j2", role=role, entry=entry, tasks_from=tasks_from, title=title, facts=list(facts),
                  check=check, validate=validate)
