"""Loading documents for the ``search`` tool (``taskforce ingest``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Row

from shared.errors import ConfigurationError
from shared.persistence import tables

# Longest chunk stored as one document (characters); longer text files are split at
# paragraph boundaries so that a hit points at a passage, not a whole book.
MAX_CHUNK_CHARS = 2_000
TEXT_SUFFIXES = {".txt", ".md", ".rst"}


def _chunks(body: str) -> Iterator[str]:
    chunk: list[str] = []
    size = 0
    for paragraph in (p.strip() for p in body.split("\n\n")):
        if not paragraph:
            continue
        if chunk and size + len(paragraph) > MAX_CHUNK_CHARS:
            yield "\n\n".join(chunk)
            chunk, size = [], 0
        chunk.append(paragraph)
        size += len(paragraph) + 2
    if chunk:
        yield "\n\n".join(chunk)


def read_documents(path: Path) -> Iterator[dict[str, str]]:
    """Documents in ``path``: ``{"title", "body", "source"}`` dicts.

    ``.jsonl`` files hold one object per line with ``body`` (or ``text``) and optional
    ``title`` and ``source``; ``.txt``, ``.md`` and ``.rst`` files are split into
    passages of at most 2,000 characters; a directory is read recursively.

    Raises:
        ConfigurationError: The path does not exist, a line is not JSON, or a file type
            is not supported.
    """
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file() and (child.suffix in TEXT_SUFFIXES or child.suffix == ".jsonl"):
                yield from read_documents(child)
        return
    if not path.exists():
        raise ConfigurationError(f"{path} does not exist")
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    body = row.get("body") or row.get("text")
                except (json.JSONDecodeError, AttributeError):
                    raise ConfigurationError(f"{path}:{number}: not a JSON object") from None
                if not body:
                    raise ConfigurationError(f"{path}:{number}: no 'body' or 'text' field")
                yield {
                    "title": str(row.get("title") or f"{path.stem} #{number}"),
                    "body": str(body),
                    "source": str(row.get("source") or path.name),
                }
        return
    if path.suffix not in TEXT_SUFFIXES:
        raise ConfigurationError(f"{path}: unsupported file type (use .jsonl, .txt, .md, .rst)")
    for index, chunk in enumerate(_chunks(path.read_text(encoding="utf-8")), 1):
        yield {"title": f"{path.stem} ({index})", "body": chunk, "source": path.name}


def insert_documents(connection: Connection, documents: Iterable[dict[str, str]]) -> int:
    """Insert documents, skipping exact duplicates of stored ones. Returns how many new."""
    added = 0
    for document in documents:
        digest = hashlib.sha256(
            f"{document['title']}\0{document['body']}".encode()
        ).hexdigest()
        added += connection.execute(
            pg_insert(tables.documents)
            .values(source=document["source"], title=document["title"],
                    body=document["body"], content_sha256=digest)
            .on_conflict_do_nothing()
        ).rowcount
    return added


# Raw SQL: Postgres text search turns the words into a tsquery whose terms are OR-ed
# (plainto_tsquery AND-s them; the text form is rewritten), which needs casts between
# tsquery and text that read more plainly as SQL than as Core expressions.
_SEARCH = text(
    """
    WITH q AS (
        SELECT replace(plainto_tsquery('english', :query)::text, '&', '|')::tsquery AS tsq
    )
    SELECT d.title, d.source, d.body, ts_rank_cd(d.tsv, q.tsq) AS rank
    FROM documents d, q
    WHERE q.tsq::text <> '' AND d.tsv @@ q.tsq
    ORDER BY rank DESC, d.id
    LIMIT :limit
    """
)


def search_documents(connection: Connection, *, query: str, limit: int) -> list[Row]:
    """Documents matching any word of ``query`` (``english`` text search), best first.

    Returns:
        Up to ``limit`` rows with ``title``, ``source``, ``body`` and ``rank``
        (``ts_rank_cd``, which favours documents matching more terms close together).
    """
    return list(connection.execute(_SEARCH, {"query": query, "limit": limit}).all())
