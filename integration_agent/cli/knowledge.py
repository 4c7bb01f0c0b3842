"""``intagent knowledge search|add``: the documents intagent knows about each integration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import console, err_console, state, strip_control

app = typer.Typer(no_args_is_help=True, help="Knowledge documents: search them with citations, add new ones.")


def _open(ctx: typer.Context):
    from ..knowledge import KnowledgeBase

    kb = KnowledgeBase.for_settings(state(ctx).settings())
    for problem in kb.stats().problems:
        err_console.print(f"intagent: warning: not indexed: {problem}", markup=False, soft_wrap=True)
    return kb


@app.command("search")
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Words to look for (any text; no query syntax).")],
    integration: Annotated[str | None, typer.Option("--integration", help="Only this integration.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=50, help="Passages to show.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Find the passages that best match QUERY, each with the id to cite and its source."""
    from .output import print_json

    with _open(ctx) as kb:
        passages = kb.search(query, integration=integration, limit=limit)
    if as_json:
        print_json([p.to_json() for p in passages])
        return
    if not passages:
        err_console.print("no passage matches", markup=False)
        return
    # Passages are untrusted text: never let one drive the terminal (escape sequences) or rich markup.
    if not console.is_terminal:
        for p in passages:
            print(f"{p.id}  score {p.score:.2f}\n  {strip_control(p.title)}\n  {strip_control(p.source)}\n")
            print("\n".join("    " + line for line in strip_control(p.text).splitlines()), end="\n\n")
        return
    from rich.panel import Panel
    from rich.text import Text

    for p in passages:
        header = Text.assemble((p.id, "bold cyan"), f"  score {p.score:.2f}  ", (strip_control(p.title), "bold"))
        console.print(Panel(Text(strip_control(p.text)), title=header, title_align="left",
                            subtitle=Text(strip_control(p.source), style="dim"), subtitle_align="left"))


@app.command("add")
def add(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Markdown document with front matter (title, source, retrieved, "
                                               "applies_to).", exists=True, dir_okay=False)],
    integration: Annotated[str, typer.Option("--integration", help="Integration the document is about.")],
) -> None:
    """Validate a document, copy it into the integration's knowledge folder and index it."""
    from ..knowledge import load_document

    with _open(ctx) as kb:
        dest = kb.add(path, integration)
    chunks = load_document(dest, integration).chunks
    console.print(f"added {dest}: {len(chunks)} passages, {chunks[0].id} .. #{chunks[-1].ordinal}", markup=False)
