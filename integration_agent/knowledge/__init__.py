"""The knowledge base: source documents per integration, indexed for search and quoted safely into prompts.

Documents live in ``knowledge/<integration>/*.md`` (subfolders count); what intagent recorded itself, its
learned notes, in ``<learned_dir>/<integration>/*.md`` (the ``learned_dir`` setting, outside the package),
cited as ``<integration>/learned/<note>``. :mod:`.documents` validates and chunks them, :mod:`.index` keeps
a SQLite FTS5 index of every chunk and answers searches with citable :class:`Passage` values.
"""

from __future__ import annotations

from .documents import Chunk, Document, load_document, parse_document
from .index import KnowledgeBase, Passage, RefreshResult, Stats, default_db_path, fts_query
from .prompt import format_for_prompt

__all__ = ["Chunk", "Document", "KnowledgeBase", "Passage", "RefreshResult", "Stats", "default_db_path",
           "format_for_prompt", "fts_query", "load_document", "parse_document"]
