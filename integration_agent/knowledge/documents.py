"""Knowledge documents: markdown with YAML front matter, split into citable chunks.

A document looks like::

    ---
    title: What the page says, in one line
    source: https://vendor.example/docs/page
    retrieved: "2026-11-25"
    applies_to: agent 1.x on Debian 12
    tags: [optional, list]
    ---
    # Markdown body ...

The front matter is untrusted YAML (a document may come from a plugin, a user or a model's notes), so it
is checked before it is parsed: size limits, no anchors, aliases, tags or directives (which rules out
billion-laughs documents), no duplicate keys, and exactly the known keys. Every problem raises
:class:`~integration_agent.errors.IntegrationError` naming the file.

The body is cut into chunks at headings, then between paragraphs, aiming at ``CHUNK_MIN``..``CHUNK_MAX``
characters; a fenced code block is never cut (see :mod:`.chunking`). Chunk ids are
``<integration>/<doc-id>#<n>`` (``n`` counts from 1), so the same document always yields the same ids.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ..errors import IntegrationError
from .chunking import CHUNK_MAX as CHUNK_MAX  # re-exported
from .chunking import CHUNK_MIN as CHUNK_MIN  # re-exported
from .chunking import split_markdown

MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_FRONT_MATTER_BYTES = 64 * 1024
MAX_NESTING = 8  # front matter needs 2 levels; PyYAML's parser recurses, so deep nesting must not reach it
REQUIRED_KEYS = ("title", "source", "retrieved", "applies_to")
OPTIONAL_KEYS = ("tags",)
# file:// for local notes, intagent:// for what intagent learned itself (for example intagent://runs/<id>).
URL_SCHEMES = frozenset({"http", "https", "file", "intagent"})
# A document id is its path below the integration's knowledge folder, without ``.md``.
DOC_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_OPENING = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken, yaml.FlowMappingStartToken,
            yaml.FlowSequenceStartToken)
_CLOSING = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)
_REJECTED_TOKENS = {
    yaml.AnchorToken: "YAML anchors (&name) are not allowed",
    yaml.AliasToken: "YAML aliases (*name) are not allowed",
    yaml.TagToken: "YAML tags (!tag) are not allowed",
    yaml.DirectiveToken: "YAML directives (%...) are not allowed",
}


@dataclass(frozen=True)
class Chunk:
    """One citable passage of a document."""

    id: str  # <integration>/<doc-id>#<n>
    ordinal: int  # 1-based position in the document
    heading: str  # the heading trail above the chunk, "Title > Section"
    text: str
    sha256: str  # of ``text`` in UTF-8, so a citation can tell that the passage changed


@dataclass(frozen=True)
class Document:
    """A parsed, validated knowledge document."""

    path: Path
    integration: str
    doc_id: str
    title: str
    source: str
    retrieved: str
    applies_to: str
    tags: tuple[str, ...]
    body: str
    sha256: str  # of the file's bytes
    chunks: tuple[Chunk, ...]


def doc_id_for(path: Path, knowledge_dir: Path) -> str:
    """The document id of ``path``: its path below ``knowledge_dir`` without the ``.md`` suffix."""
    relative = path.relative_to(knowledge_dir).with_suffix("")
    doc_id = relative.as_posix()
    if not DOC_ID_PATTERN.match(doc_id):
        raise IntegrationError(f"{path}: file name not allowed for a knowledge document",
                               hint="use letters, digits, '.', '_' and '-' only")
    return doc_id


def read_bounded(path: Path) -> bytes:
    """The file's bytes, refusing files over ``MAX_DOCUMENT_BYTES`` without reading them whole."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise IntegrationError(f"{path}: cannot read knowledge document: {exc.strerror}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise IntegrationError(f"{path}: document is larger than {MAX_DOCUMENT_BYTES // 1024} KiB")
    return data


def load_document(path: Path, integration: str, doc_id: str | None = None) -> Document:
    """Read and parse one document file (``doc_id`` defaults to the file's stem)."""
    return parse_document(read_bounded(path), path=path, integration=integration, doc_id=doc_id or path.stem)


def parse_document(data: bytes | str, *, path: Path, integration: str, doc_id: str) -> Document:
    """Validate the front matter and chunk the body of one document."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise IntegrationError(f"{path}: document is larger than {MAX_DOCUMENT_BYTES // 1024} KiB")
    if not DOC_ID_PATTERN.match(doc_id):
        raise IntegrationError(f"{path}: document id {doc_id!r} not allowed")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IntegrationError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    bad = _CONTROL.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise IntegrationError(f"{path}:{line}: control character {bad.group()!r} in document")
    front, body = _split_front_matter(text, path)
    meta = _validate(parse_front_matter(front, path), path)
    prefix = f"{integration}/{doc_id}"
    chunks = tuple(Chunk(f"{prefix}#{n}", n, heading, chunk, _sha(chunk))
                   for n, (heading, chunk) in enumerate(split_markdown(body), start=1))
    if not chunks:
        raise IntegrationError(f"{path}: document has no text after its front matter")
    return Document(path=path, integration=integration, doc_id=doc_id, body=body,
                    sha256=hashlib.sha256(raw).hexdigest(), chunks=chunks, **meta)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _split_front_matter(text: str, path: Path) -> tuple[str, str]:
    """Cut ``---`` front matter from the body, refusing front matter over the size limit."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        raise IntegrationError(f"{path}: missing YAML front matter (the first line must be '---')")
    size = 0
    for number, line in enumerate(lines[1:], start=1):
        if line.rstrip() in ("---", "..."):
            return "\n".join(lines[1:number]), "\n".join(lines[number + 1:])
        size += len(line.encode("utf-8")) + 1
        if size > MAX_FRONT_MATTER_BYTES:
            break
    if size > MAX_FRONT_MATTER_BYTES:
        raise IntegrationError(f"{path}: front matter is larger than {MAX_FRONT_MATTER_BYTES // 1024} KiB")
    raise IntegrationError(f"{path}: front matter is not closed by a '---' line")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate and merge (``<<``) keys instead of silently keeping one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise yaml.constructor.ConstructorError(None, None, "merge keys (<<) are not allowed",
                                                        key_node.start_mark)
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: SafeLoader reports it below
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def parse_front_matter(text: str, path: Path) -> dict[str, Any]:
    """Parse front matter YAML after scanning its tokens for anchors, aliases, tags and directives."""
    if len(text.encode("utf-8")) > MAX_FRONT_MATTER_BYTES:
        raise IntegrationError(f"{path}: front matter is larger than {MAX_FRONT_MATTER_BYTES // 1024} KiB")
    depth = 0
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            problem = _REJECTED_TOKENS.get(type(token))
            depth += 1 if isinstance(token, _OPENING) else -1 if isinstance(token, _CLOSING) else 0
            if depth > MAX_NESTING:
                problem = f"nested deeper than {MAX_NESTING} levels"
            if problem:
                raise IntegrationError(f"{path}:{token.start_mark.line + 2}: front matter: {problem}")
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 2}" if mark else ""  # +1 for 1-based lines, +1 for the opening '---'
        reason = getattr(exc, "problem", None) or exc
        raise IntegrationError(f"{path}{where}: front matter is not valid YAML: {reason}") from None
    if not isinstance(data, dict):
        raise IntegrationError(f"{path}: front matter must be a mapping of keys, got {type(data).__name__}")
    return data


def _validate(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """Check keys and value types; return the fields of :class:`Document` that come from front matter."""
    unknown = sorted(str(k) for k in data if k not in REQUIRED_KEYS + OPTIONAL_KEYS)
    if unknown:
        raise IntegrationError(f"{path}: front matter: unknown key(s) {', '.join(unknown)}",
                               hint=f"allowed: {', '.join(REQUIRED_KEYS + OPTIONAL_KEYS)}")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise IntegrationError(f"{path}: front matter: missing key(s) {', '.join(missing)}")
    retrieved = data["retrieved"]
    if isinstance(retrieved, (dt.date, dt.datetime)):
        retrieved = retrieved.isoformat()
    out = {"title": _text(data["title"], "title", path), "source": _url(data["source"], path),
           "retrieved": _text(retrieved, "retrieved", path),
           "applies_to": _text(data["applies_to"], "applies_to", path)}
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
        raise IntegrationError(f"{path}: front matter: tags must be a list of strings")
    return {**out, "tags": tuple(tags)}


def _text(value: Any, key: str, path: Path) -> str:
    if not isinstance(value, str) or not value.strip():
        raise IntegrationError(f"{path}: front matter: {key} must be a non-empty string, got {value!r}"[:300])
    if "\n" in value.strip():
        raise IntegrationError(f"{path}: front matter: {key} must be one line")
    return value.strip()


def _url(value: Any, path: Path) -> str:
    url = _text(value, "source", path)
    parts = urlsplit(url)
    if parts.scheme not in URL_SCHEMES or not (parts.netloc or parts.path) or any(c.isspace() for c in url):
        raise IntegrationError(f"{path}: front matter: source must be a URL "
                               f"({', '.join(sorted(URL_SCHEMES))}), got {url!r}"[:300])
    return url
