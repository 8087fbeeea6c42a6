"""``search``: full-text search over the ``documents`` table in Postgres.

Documents are loaded with ``taskforce ingest PATH...``. Matching uses Postgres text
search with the ``english`` configuration; any query word may match (terms are OR-ed)
and hits are ordered by ``ts_rank_cd``, which favours documents that match more terms
close together.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from shared.errors import ToolError
from shared.persistence.documents import search_documents
from shared.tools.base import Tool, ToolContext

_NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.])-?\d+(?:\.\d+)?")
SNIPPET_CHARS = 400


class SearchInput(BaseModel):
    """Arguments of ``search``.

    Attributes:
        query: Words to look for (1 to 500 characters).
        limit: Most hits to return (1 to 20).
    """

    query: str = Field(min_length=1, max_length=500)
    limit: int = Field(default=3, ge=1, le=20)


def first_number(body: str) -> float | None:
    """The first number written in ``body`` (``10,994`` reads as 10994), or None."""
    match = _NUMBER.search(body)
    return float(match.group(0).replace(",", "")) if match else None


def _run(args: SearchInput, ctx: ToolContext) -> dict[str, Any]:
    if ctx.engine is None:
        raise ToolError("search needs a database engine in its context")
    with ctx.engine.connect() as connection:
        rows = search_documents(connection, query=args.query, limit=args.limit)
    hits = [
        {
            "title": row.title,
            "source": row.source,
            "snippet": row.body[:SNIPPET_CHARS],
            "rank": round(float(row.rank), 6),
        }
        for row in rows
    ]
    return {
        "query": args.query,
        "hits": hits,
        "value": first_number(rows[0].body) if rows else None,
    }


SEARCH = Tool(
    name="search",
    description=(
        "Full-text search over the ingested documents. Input: {\"query\": str, \"limit\": int}. "
        "Output: {\"hits\": [{\"title\", \"snippet\", \"source\", \"rank\"}], "
        "\"value\": the first number in the best hit, or null}."
    ),
    input_model=SearchInput,
    run=_run,
    remote=True,
)
