"""``intagent collection build``: the curated roles and AWX entry playbooks as an Ansible collection."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="The Ansible collection intagent.integrations (roles and AWX playbooks).")


@app.command("build")
def build(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the tarball.")] = Path("dist"),
    repository: Annotated[str | None, typer.Option(help="Source URL recorded in galaxy.yml (default: the "
                                                            "checkout's origin remote, else the checkout).")] = None,
) -> None:
    """Build the collection tarball from roles/ and playbooks/; install it with ansible-galaxy (offline)."""
    from ..collection import build as build_collection

    print(build_collection(out, repository))
