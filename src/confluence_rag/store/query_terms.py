"""User query text -> search terms, and terms -> a safe FTS5 MATCH expression.

Pure functions shared by the backends (SQLite FTS5 here; PostgreSQL builds its tsquery from the
same terms) and by the snippet highlighter, so what is matched is what is highlighted.

User text is never passed to FTS5 as syntax: it is split into words and every word is quoted,
so ``"``, ``*``, ``NEAR``, ``AND``, ``-`` or an unbalanced parenthesis can never raise a syntax
error or change the meaning of the query. Words are OR-ed, which is what BM25 expects (a long
natural-language question still finds the documents that share its rare words).
"""

from __future__ import annotations

import re

# Words of 1+ letters/digits (Unicode aware); "_" and punctuation split words, as unicode61
# does, so the terms we quote are exactly tokens the FTS index holds.
_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# Lucene's classic English stop words: matched by nearly every chunk, they only cost time
# (FTS5 scores every row a term matches) and add nothing to bm25.
STOPWORDS: frozenset[str] = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with".split()
)

# Longer queries are cut: nobody types more than this and a huge OR costs time.
MAX_TERMS = 32


def query_terms(query: str) -> list[str]:
    """Lower-cased distinct words of ``query`` in order, stop words dropped unless the query
    has nothing else (``"the who"`` still searches ``who``; ``"to be"`` searches both)."""
    words = [w.lower() for w in _WORD.findall(query or "")]
    distinct = list(dict.fromkeys(words))
    kept = [w for w in distinct if w not in STOPWORDS]
    return (kept or distinct)[:MAX_TERMS]


def fts5_match(terms: list[str]) -> str:
    """An FTS5 MATCH expression OR-ing the quoted terms; ``""`` when there are none."""
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
