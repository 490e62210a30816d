"""Checks every backend applies before it writes, with the same errors and messages.

Pure functions: they raise ``InvalidInput`` / ``IndexModelMismatch`` and touch no database.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, get_args

import numpy as np

from confluence_rag.content.models import Document
from confluence_rag.errors import IndexModelMismatch, InvalidInput
from confluence_rag.index.models import Chunk
from confluence_rag.records import AuthKind, Flavour, JobKind, JobStatus, SyncStatus

_CHOICES: dict[str, tuple[str, Collection[str]]] = {
    "sync_status": ("sync_status", get_args(SyncStatus)),
    "flavour": ("flavour", get_args(Flavour)),
    "auth_kind": ("auth_kind", get_args(AuthKind)),
}
_JOB_CHOICES: dict[str, tuple[str, Collection[str]]] = {
    "status": ("job status", get_args(JobStatus)),
    "kind": ("job kind", get_args(JobKind)),
}


def _check_choices(values: Mapping[str, Any], choices: Mapping[str, tuple[str, Any]]) -> None:
    for field, (label, allowed) in choices.items():
        if field in values and values[field] not in allowed:
            raise InvalidInput(
                f"{label} must be one of {sorted(allowed)}, got {values[field]!r}",
                details={"field": field},
            )


def check_fields(kind: str, changes: Mapping[str, Any], updatable: Collection[str]) -> None:
    """``InvalidInput`` for a field ``update_<kind>`` does not accept."""
    unknown = set(changes) - set(updatable)
    if unknown:
        raise InvalidInput(
            f"cannot update {kind} fields {sorted(unknown)}", details={"fields": sorted(unknown)}
        )


def check_source_values(values: Mapping[str, Any]) -> None:
    """The fields of a source being created or updated that have a fixed set of values."""
    if "id" in values and (not values["id"] or not str(values["id"]).strip()):
        raise InvalidInput("a source needs a non-empty id", details={"field": "id"})
    _check_choices(values, _CHOICES)


def check_job_values(values: Mapping[str, Any]) -> None:
    if "id" in values and not values["id"]:
        raise InvalidInput("a job needs a non-empty id")
    _check_choices(values, _JOB_CHOICES)


def check_lease(worker_id: str, lease_seconds: float) -> None:
    if not worker_id:
        raise InvalidInput("a worker needs a non-empty id")
    if not lease_seconds > 0:
        raise InvalidInput(f"a lease must last more than 0 seconds, got {lease_seconds}")


def check_index_model(model_id: str, dimension: int) -> None:
    if not model_id or dimension < 1:
        raise InvalidInput(f"invalid embedding model {model_id!r} / dimension {dimension}")


def check_page_chunks(document: Document, chunks: Sequence[Chunk]) -> None:
    """Chunks handed to ``write_page`` belong to its page, each ordinal once."""
    ordinals = [chunk.ordinal for chunk in chunks]
    if len(set(ordinals)) != len(ordinals):
        raise InvalidInput(f"chunks of page {document.page_id} repeat an ordinal")
    if any(chunk.page_id != document.page_id for chunk in chunks):
        raise InvalidInput(f"chunks given with page {document.page_id} belong to another page")


def check_dimension(recorded: int | None, matrix: np.ndarray) -> None:
    """The vectors fit the index: a model is recorded and its dimension is theirs."""
    if recorded is None:
        raise IndexModelMismatch(
            "no embedding model is recorded for this index: call ensure_index_model() before "
            "writing pages"
        )
    if matrix.shape[0] and matrix.shape[1] != recorded:
        raise IndexModelMismatch(
            f"embeddings have {matrix.shape[1]} dimensions but this index holds {recorded}",
            details={"index_dimension": recorded, "got": int(matrix.shape[1])},
        )
