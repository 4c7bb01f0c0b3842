"""Cutting a markdown body into citable chunks.

The body is cut into chunks at headings, then between paragraphs, aiming at ``CHUNK_MIN``..``CHUNK_MAX``
characters; a fenced code block is never cut, and the same body always yields the same chunks.
"""

from __future__ import annotations

import re

CHUNK_MIN, CHUNK_MAX = 300, 900  # characters: big enough to stand alone, small enough to cite


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t#]*$")


def split_markdown(body: str) -> list[tuple[str, str]]:
    """Cut a markdown body into ``(heading trail, text)`` chunks of about CHUNK_MIN..CHUNK_MAX characters.

    A heading starts a new chunk unless the current one is still under CHUNK_MIN; paragraphs are added
    while the chunk stays under CHUNK_MAX. A heading is never left at the end of a chunk, and a fenced
    code block is never cut, even when longer than CHUNK_MAX.
    """
    chunks: list[tuple[str, str]] = []
    current: list[tuple[str, str, str]] = []  # (kind, text, trail)

    def emit() -> None:
        keep: list[tuple[str, str, str]] = []
        while current and current[-1][0] == "heading":  # a heading belongs with what follows it
            keep.insert(0, current.pop())
        if current:
            chunks.append((current[0][2], "\n\n".join(text for _, text, _ in current)))
        current[:] = keep

    for kind, block, trail in _blocks(body):
        for piece in _split_long(block) if kind == "text" else [block]:
            size = sum(len(text) + 2 for _, text, _ in current)
            if current and any(k != "heading" for k, _, _ in current) and (
                    (kind == "heading" and size >= CHUNK_MIN) or size + len(piece) > CHUNK_MAX):
                emit()
            current.append((kind, piece, trail))
    emit()
    if current:  # only headings were left: attach them to the last chunk rather than lose them
        text = "\n\n".join(t for _, t, _ in current)
        chunks[-1:] = [(chunks[-1][0], f"{chunks[-1][1]}\n\n{text}")] if chunks else [(current[0][2], text)]
    return chunks


def _blocks(body: str) -> list[tuple[str, str, str]]:
    """Headings, paragraphs and fenced code blocks as (kind, text, heading trail)."""
    blocks: list[tuple[str, str, str]] = []
    trail: list[tuple[int, str]] = []
    lines: list[str] = []
    fence: str | None = None

    def flush(kind: str = "text") -> None:
        text = "\n".join(lines).strip("\n")
        if text.strip():
            blocks.append((kind, text, " > ".join(t for _, t in trail if t)))
        lines.clear()

    for line in body.split("\n"):
        if fence is not None:
            lines.append(line)
            if line.strip().startswith(fence) and set(line.strip()) == {fence[0]}:
                fence = None
                flush("code")
            continue
        opening, heading = _FENCE.match(line), _HEADING.match(line)
        if opening:
            flush()
            fence = opening.group(1)
            lines.append(line)
        elif heading:
            flush()
            level = len(heading.group(1))
            trail = [(lvl, t) for lvl, t in trail if lvl < level] + [(level, (heading.group(2) or "").strip())]
            lines.append(line.strip())
            flush("heading")
        elif not line.strip():
            flush()
        else:
            lines.append(line)
    flush("code" if fence is not None else "text")  # an unclosed fence runs to the end, as in CommonMark
    return blocks


# Where a long paragraph may be cut, best first: before a list item, at a line end, after a sentence, at a space.
_CUTS = ((r"\n(?=[ \t]*(?:[-*+]|\d+[.)])[ \t])", "\n"), (r"\n", "\n"), (r"(?<=[.!?;])[ \t]+", " "), (r"[ \t]+", " "))


def _split_long(text: str, level: int = 0) -> list[str]:
    """A paragraph over CHUNK_MAX cut at the best kind of boundary that exists in it, packed greedily."""
    if len(text) <= CHUNK_MAX:
        return [text]
    if level == len(_CUTS):  # one unbroken run of characters
        return [text[i:i + CHUNK_MAX] for i in range(0, len(text), CHUNK_MAX)]
    pattern, joiner = _CUTS[level]
    pieces: list[str] = []
    for part in re.split(pattern, text):
        for sub in _split_long(part, level + 1):
            if pieces and len(pieces[-1]) + len(joiner) + len(sub) <= CHUNK_MAX:
                pieces[-1] += joiner + sub
            else:
                pieces.append(sub)
    return [p for p in pieces if p.strip()]
