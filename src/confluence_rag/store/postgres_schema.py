"""PostgreSQL-only schema: pgvector column, weighted full-text columns and their indexes.

The portable tables come from the shared Alembic revision ``0001``; its PostgreSQL branch calls
``upgrade_0001`` to add what only PostgreSQL has. Dropping the tables (``downgrade``) drops all of
it with them; the ``vector`` extension itself is left installed (other schemas may use it).

The embedding column starts as an unsized ``vector``: the dimension is only known when the first
model is recorded, and an HNSW index needs a fixed one. ``set_dimension_sql`` sizes the column
and builds the index then (the table has no chunks at that moment, so it is instant).

Full text: a chunk's ``tsv`` is GENERATED from its page title (weight A), heading path (B) and
body (C). The title is copied onto each chunk (``page_title``) because a generated column can only
read its own row; ``write_page`` keeps the copy in step with the page.
"""

from __future__ import annotations

from typing import Any

from confluence_rag.errors import InvalidInput

#: Text search configuration for chunks, code and queries: stemming English, like SQLite's
#: porter tokenizer.
TS_CONFIG = "english"
HNSW_INDEX = "ix_chunks_embedding_hnsw"
#: pgvector's limits: a ``vector`` column holds up to 16,000 dimensions, an HNSW index on it up
#: to 2,000. Wider models (e.g. 3,072) still work, searched exactly without the index.
MAX_VECTOR_DIMENSION = 16000
MAX_HNSW_DIMENSION = 2000

_CHUNK_TSV = (
    "setweight(to_tsvector('english'::regconfig, page_title), 'A') || "
    "setweight(jsonb_to_tsvector('english'::regconfig, heading_path, '[\"string\"]'), 'B') || "
    "setweight(to_tsvector('english'::regconfig, text), 'C')"
)
# Code search: the context around a block (page title, headings, caption, language) says more
# about what it does than the identifiers inside it.
_CODE_TSV = (
    "setweight(to_tsvector('english'::regconfig, page_title), 'A') || "
    "setweight(jsonb_to_tsvector('english'::regconfig, heading_path, '[\"string\"]'), 'A') || "
    "setweight(to_tsvector('english'::regconfig, caption || ' ' || language), 'A') || "
    "setweight(to_tsvector('english'::regconfig, code), 'C')"
)

UPGRADE_0001: tuple[str, ...] = (
    "CREATE EXTENSION IF NOT EXISTS vector",
    # The portable revision made a bytea column for SQLite's float32 blobs; here it is a vector.
    "ALTER TABLE chunks DROP COLUMN embedding",
    "ALTER TABLE chunks ADD COLUMN embedding vector NOT NULL",
    "ALTER TABLE chunks ADD COLUMN page_title text NOT NULL DEFAULT ''",
    f"ALTER TABLE chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS ({_CHUNK_TSV}) STORED",
    "CREATE INDEX ix_chunks_tsv ON chunks USING gin (tsv)",
    "ALTER TABLE code_examples ADD COLUMN page_title text NOT NULL DEFAULT ''",
    f"ALTER TABLE code_examples ADD COLUMN tsv tsvector GENERATED ALWAYS AS ({_CODE_TSV}) STORED",
    "CREATE INDEX ix_code_tsv ON code_examples USING gin (tsv)",
    # Live-page filters are on every search: a partial index keeps them cheap.
    "CREATE INDEX ix_pages_live ON pages (source_id, space_key) WHERE NOT is_deleted",
)


def upgrade_0001(op: Any) -> None:
    """Called by revision 0001 on PostgreSQL, after the portable tables exist."""
    for statement in UPGRADE_0001:
        op.execute(statement)


def set_dimension_sql(dimension: int) -> tuple[str, ...]:
    """Statements that size the embedding column and (re)build its HNSW cosine index.

    ``dimension`` is an int checked by the caller, never user text; DDL cannot take parameters.
    """
    dim = int(dimension)
    if not 1 <= dim <= MAX_VECTOR_DIMENSION:
        raise InvalidInput(f"vector dimension {dim} is outside 1..{MAX_VECTOR_DIMENSION}")
    statements = [
        f"DROP INDEX IF EXISTS {HNSW_INDEX}",
        f"ALTER TABLE chunks ALTER COLUMN embedding TYPE vector({dim})",
    ]
    if dim <= MAX_HNSW_DIMENSION:
        statements.append(
            f"CREATE INDEX {HNSW_INDEX} ON chunks USING hnsw (embedding vector_cosine_ops)"
        )
    return tuple(statements)
