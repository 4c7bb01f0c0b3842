"""The knowledge base: every integration's documents in one SQLite FTS5 index, kept up to date on open.

The index is a cache (``default_db_path()``): the documents under ``knowledge/<integration>/`` and the
learned notes under ``<learned_dir>/<integration>/`` (the ``learned_dir`` setting) are the truth. Opening
a :class:`KnowledgeBase` hashes every document and re-parses only new or changed ones, dropping documents
that disappeared; when nothing changed it writes nothing. A document that fails validation is recorded as
a problem (see :meth:`KnowledgeBase.stats`) and not indexed, so one bad file does not hide every other
integration's knowledge.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ..catalog import Catalog, Integration
from ..errors import IntagentError, IntegrationError
from ..paths import default_learned_dir
from .documents import DOC_ID_PATTERN, Document, doc_id_for, parse_document, read_bounded
from .prompt import PROMPT_PREAMBLE as PROMPT_PREAMBLE  # re-exported
from .prompt import _neutralise as _neutralise  # re-exported
from .prompt import format_for_prompt as format_for_prompt  # re-exported

if TYPE_CHECKING:
    from ..settings import Settings

LEARNED = "learned"  # the id prefix of learned notes: <integration>/learned/<note>#<n>
SCHEMA_VERSION = 1
MAX_QUERY_TOKENS = 32
_WEIGHTS = "1.0, 2.0, 1.0"  # bm25 weights of the title, heading and text columns
_SCHEMA = (
    "CREATE TABLE documents (path TEXT PRIMARY KEY, integration TEXT NOT NULL, doc_id TEXT NOT NULL, "
    "sha256 TEXT NOT NULL, title TEXT, source TEXT, retrieved TEXT, applies_to TEXT, error TEXT)",
    "CREATE TABLE chunks (pk INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, doc_path TEXT NOT NULL, "
    "integration TEXT NOT NULL, ordinal INTEGER NOT NULL, title TEXT NOT NULL, heading TEXT NOT NULL, "
    "text TEXT NOT NULL, sha256 TEXT NOT NULL)",
    "CREATE INDEX chunks_doc ON chunks(doc_path)",
    # External content: the text is stored once (in chunks); triggers keep the FTS index in step.
    "CREATE VIRTUAL TABLE chunks_fts USING fts5(title, heading, text, content='chunks', content_rowid='pk', "
    "tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN INSERT INTO chunks_fts(rowid, title, heading, text) "
    "VALUES (new.pk, new.title, new.heading, new.text); END",
    "CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN INSERT INTO chunks_fts(chunks_fts, rowid, title, "
    "heading, text) VALUES ('delete', old.pk, old.title, old.heading, old.text); END",
)
_PASSAGE_SQL = ("SELECT c.id, c.integration, d.title, d.source, d.retrieved, d.applies_to, c.text, c.heading "
                "{score} FROM {source} JOIN documents d ON d.path = c.doc_path")


def default_db_path() -> Path:
    """``$XDG_CACHE_HOME/intagent/knowledge.sqlite`` (``~/.cache`` when the variable is unset)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "intagent" / "knowledge.sqlite"


@dataclass(frozen=True)
class Passage:
    """A chunk as search returns it, with what a citation needs. ``score``: higher is better (0 from get)."""

    id: str
    integration: str
    title: str
    source: str
    retrieved: str
    applies_to: str
    text: str
    score: float = 0.0
    heading: str = ""  # the heading trail above the passage ("Title > Section"), for context

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh changed, by document path."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # documents that failed validation during this refresh

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.problems)


@dataclass(frozen=True)
class Stats:
    """Counts of the index; ``problems`` names every document that is not indexed and why."""

    db_path: Path
    documents: int
    chunks: int
    by_integration: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def fts_query(query: str) -> str | None:
    """A safe FTS5 expression: each token quoted (so no operator or syntax survives), joined with OR.

    OR rather than the implicit AND so that a natural-language question still finds passages; bm25 ranks
    the passages matching more and rarer terms first. None when the query has no searchable token.
    """
    tokens = [t for t in query.split() if re.search(r"\w", t)][:MAX_QUERY_TOKENS]
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in tokens) or None


class KnowledgeBase:
    """Search, cite and extend the knowledge documents of every integration in the catalog."""

    def __init__(self, db_path: Path, catalog: Catalog | None = None, *, learned_dir: Path | None = None) -> None:
        self.db_path = db_path
        self.catalog = catalog if catalog is not None else Catalog()
        self.learned_dir = learned_dir if learned_dir is not None else default_learned_dir()
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(db_path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise IntagentError(f"knowledge index {db_path}: {exc}") from None
        try:
            self._db.row_factory = sqlite3.Row
            self._ensure_schema()
            self.last_refresh = self.refresh()
        except sqlite3.Error as exc:
            self._db.close()
            raise IntagentError(f"knowledge index {db_path}: {exc}",
                                hint="it is a cache: delete the file to rebuild it") from None
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def for_settings(cls, settings: Settings, catalog: Catalog | None = None) -> KnowledgeBase:
        """The knowledge base a command sees: the default index, the settings' catalog and learned notes."""
        return cls(default_db_path(), catalog if catalog is not None else Catalog.for_settings(settings),
                   learned_dir=settings.learned_dir)

    def learned_folder(self, integration: str) -> Path:
        """Where the learned notes of ``integration`` are kept: ``<learned_dir>/<integration>/``."""
        return self.learned_dir / self.catalog.get(integration).name

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE so that two processes refreshing at once take turns."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _ensure_schema(self) -> None:
        if self._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        with self._write() as db:
            if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                return  # another process created it while we waited for the lock
            for kind, name in db.execute("SELECT type, name FROM sqlite_master WHERE type IN ('table', 'trigger') "
                                         "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'chunks_fts_%'").fetchall():
                db.execute(f'DROP {kind} IF EXISTS "{name}"')
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- keeping the index up to date ---------------------------------------------------------------

    def _documents_on_disk(self) -> dict[str, tuple[Integration, Path, Path, str]]:
        """Every document by resolved path: its integration, path, the folder its id is relative to and the
        id's prefix (``learned/`` for learned notes). ``knowledge/<integration>/learned/`` is not read: learned
        notes live in the ``learned_dir`` setting's folder, never in the package."""
        found: dict[str, tuple[Integration, Path, Path, str]] = {}
        for integration in self.catalog.integrations.values():
            learned = self.learned_dir / integration.name
            learned_resolved = learned.resolve()
            for folder, prefix in ((integration.knowledge_dir, ""), (learned, f"{LEARNED}/")):
                for path in sorted(folder.rglob("*.md")) if folder.is_dir() else ():
                    parts = path.relative_to(folder).parts
                    if not path.is_file() or any(p.startswith(".") for p in parts):
                        continue
                    if not prefix and (parts[0] == LEARNED or path.resolve().is_relative_to(learned_resolved)):
                        continue  # the old place of learned notes, or the learned folder inside knowledge/
                    found[str(path.resolve())] = (integration, path, folder, prefix)
        return found

    def refresh(self) -> RefreshResult:
        """Index new and changed documents, drop deleted ones; cheap (read-only) when nothing changed."""
        on_disk = self._documents_on_disk()
        hashes: dict[str, str] = {}
        for key, (_, path, _, _) in on_disk.items():
            try:
                hashes[key] = hashlib.sha256(read_bounded(path)).hexdigest()
            except IntegrationError as exc:
                hashes[key] = f"unreadable: {exc}"  # never equal to a recorded hash: parsed (and rejected) below
        known = dict(self._db.execute("SELECT path, sha256 FROM documents").fetchall())
        if known == hashes:
            return RefreshResult()
        with self._write() as db:
            known = dict(db.execute("SELECT path, sha256 FROM documents").fetchall())
            removed = sorted(set(known) - set(on_disk))
            for key in removed:
                self._drop(key)
            added: list[str] = []
            updated: list[str] = []
            problems = []
            for key, (integration, path, folder, prefix) in on_disk.items():
                if known.get(key) == hashes[key]:
                    continue
                (updated if key in known else added).append(key)
                problem = self._index_file(key, integration, path, folder, prefix)
                if problem:
                    problems.append(problem)
        return RefreshResult(tuple(added), tuple(updated), tuple(removed), tuple(problems))

    def _drop(self, key: str) -> None:
        self._db.execute("DELETE FROM chunks WHERE doc_path = ?", (key,))
        self._db.execute("DELETE FROM documents WHERE path = ?", (key,))

    def _index_file(self, key: str, integration: Integration, path: Path, folder: Path,
                    prefix: str = "") -> str | None:
        """(Re)index one document inside the open transaction; return the problem if it is invalid."""
        self._drop(key)
        sha = ""
        try:
            data = read_bounded(path)
            sha = hashlib.sha256(data).hexdigest()
            doc = parse_document(data, path=path, integration=integration.name,
                                 doc_id=prefix + doc_id_for(path, folder))
        except IntegrationError as exc:
            # Recorded with its hash so that an unchanged bad file is not parsed again on every open.
            self._db.execute("INSERT INTO documents (path, integration, doc_id, sha256, error) VALUES (?, ?, ?, ?, ?)",
                             (key, integration.name, path.stem, sha or f"unreadable: {exc}", str(exc)))
            return str(exc)
        self._store(key, doc)
        return None

    def _store(self, key: str, doc: Document) -> None:
        self._db.execute("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                         (key, doc.integration, doc.doc_id, doc.sha256, doc.title, doc.source, doc.retrieved,
                          doc.applies_to))
        self._db.executemany(
            "INSERT INTO chunks (id, doc_path, integration, ordinal, title, heading, text, sha256) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(c.id, key, doc.integration, c.ordinal, doc.title, c.heading, c.text, c.sha256) for c in doc.chunks])

    # -- reading -------------------------------------------------------------------------------------

    def search(self, query: str, integration: str | None = None, limit: int = 5) -> list[Passage]:
        """The passages that best match ``query`` (bm25), best first; any text is a safe query."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        expression = fts_query(query)
        if expression is None:
            return []
        sql = _PASSAGE_SQL.format(score=f", -bm25(chunks_fts, {_WEIGHTS}) AS score",
                                  source="chunks_fts JOIN chunks c ON c.pk = chunks_fts.rowid")
        sql += " WHERE chunks_fts MATCH ?"
        params: list[object] = [expression]
        if integration is not None:
            sql += " AND c.integration = ?"
            params.append(self.catalog.get(integration).name)  # unknown names are an error, not "no results"
        rows = self._db.execute(sql + " ORDER BY score DESC, c.id LIMIT ?", (*params, limit)).fetchall()
        return [Passage(**dict(row)) for row in rows]

    def get(self, ids: list[str]) -> list[Passage]:
        """The passages with these ids, in the order asked; unknown ids are left out (so a caller can
        tell that a citation does not exist by comparing lengths)."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        sql = _PASSAGE_SQL.format(score="", source="chunks c")
        rows = self._db.execute(sql + f" WHERE c.id IN ({','.join('?' * len(wanted))})", wanted).fetchall()
        by_id = {row["id"]: Passage(**dict(row)) for row in rows}
        return [by_id[i] for i in wanted if i in by_id]

    def passages(self, integration: str, limit: int = 200) -> list[Passage]:
        """Every passage of one integration, in id order (for prompts that take all of its knowledge)."""
        sql = _PASSAGE_SQL.format(score="", source="chunks c") + " WHERE c.integration = ? ORDER BY c.id LIMIT ?"
        rows = self._db.execute(sql, (self.catalog.get(integration).name, limit)).fetchall()
        return [Passage(**dict(row)) for row in rows]

    def stats(self) -> Stats:
        """Documents and chunks per integration, and the documents left out because they are invalid."""
        by: dict[str, dict[str, int]] = {}
        for name, docs in self._db.execute("SELECT integration, count(*) FROM documents WHERE error IS NULL "
                                           "GROUP BY integration"):
            by.setdefault(name, {"documents": 0, "chunks": 0})["documents"] = docs
        for name, chunks in self._db.execute("SELECT integration, count(*) FROM chunks GROUP BY integration"):
            by.setdefault(name, {"documents": 0, "chunks": 0})["chunks"] = chunks
        problems = tuple(row[0] for row in self._db.execute("SELECT error FROM documents WHERE error IS NOT NULL "
                                                             "ORDER BY path"))
        return Stats(self.db_path, sum(v["documents"] for v in by.values()),
                     sum(v["chunks"] for v in by.values()), by, problems)

    # -- writing documents ---------------------------------------------------------------------------

    def add(self, path: Path, integration: str) -> Path:
        """Validate ``path``, copy it into the integration's knowledge folder and index it.

        Adding the same file again is a no-op; a different file of the same name is refused.
        """
        target = self.catalog.get(integration)
        if path.suffix != ".md" or not DOC_ID_PATTERN.match(path.stem):
            raise IntegrationError(f"{path}: a knowledge document must be a .md file named with letters, "
                                   "digits, '.', '_' and '-'")
        data = read_bounded(path)
        parse_document(data, path=path, integration=target.name, doc_id=path.stem)  # refuse before copying
        return self._install(target, target.knowledge_dir / path.name, data, target.knowledge_dir)

    def add_note(self, integration: str, title: str, text: str, source: str, *,
                 applies_to: str | None = None, retrieved: dt.date | None = None) -> Path:
        """Write what intagent learned as ``<learned_dir>/<integration>/<slug>.md`` and index it.

        ``source`` is a URL, for a run ``intagent://runs/<run_id>``. A note with the same slug but other
        content gets a numbered name, so notes accumulate instead of overwriting each other.
        """
        target = self.catalog.get(integration)
        meta = {"title": " ".join(title.split()), "source": source,
                "retrieved": (retrieved or dt.date.today()).isoformat(),
                "applies_to": applies_to or f"{target.name} {target.manifest.version}", "tags": ["learned"]}
        body = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", text).strip()  # e.g. colour codes in run output
        content = f"---\n{yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)}---\n\n{body}\n".encode()
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60].strip("-") or "note"
        folder = self.learned_dir / target.name
        for n in range(1, 1000):
            dest = folder / (f"{slug}.md" if n == 1 else f"{slug}-{n}.md")
            if not dest.exists() or dest.read_bytes() == content:
                break
        parse_document(content, path=dest, integration=target.name, doc_id=f"{LEARNED}/{dest.stem}")
        return self._install(target, dest, content, folder, f"{LEARNED}/")

    def _install(self, target: Integration, dest: Path, data: bytes, folder: Path, prefix: str = "") -> Path:
        """Write ``data`` to ``dest`` without ever replacing a different file, then index it."""
        try:
            if dest.exists():
                if dest.read_bytes() != data:
                    raise IntegrationError(f"{dest} already exists with other content",
                                           hint="rename the document or remove the existing one")
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
                tmp.write_bytes(data)
                try:
                    os.link(tmp, dest)  # fails if dest appeared meanwhile: no silent overwrite
                finally:
                    tmp.unlink()
        except FileExistsError:
            raise IntegrationError(f"{dest} already exists with other content") from None
        except OSError as exc:
            raise IntegrationError(f"cannot write {dest}: {exc.strerror}") from None
        with self._write():
            problem = self._index_file(str(dest.resolve()), target, dest, folder, prefix)
        if problem:
            raise IntegrationError(problem)
        return dest
