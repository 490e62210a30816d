"""A little disk space held back so that a job failed by a full disk can still say so.

When SQLite answers "disk is full", the page's transaction rolls back, and then the job runner
must write the failure: the job's status and error, the source's sync status. Those writes need
a few pages of WAL. Whether the rolled-back transaction left enough room in the WAL file is
luck: a crawl that filled the disk with a bigger index (one more SQLite index on chunks was
enough) left the job `running` on the full disk, with no error for the user to read.

So the store keeps a file of ``RESERVE_BYTES`` beside the database, allocated while there is
room. The first "disk is full" deletes it, which frees that space for the bookkeeping writes
that follow. The next time the store opens (the next crawl, the restarted server) it allocates
the file again, if the disk has room by then.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from typing import BinaryIO

logger = logging.getLogger(__name__)

# A failed job's bookkeeping is three small transactions (lease, job row, source row): a few
# WAL frames of 4 KB each. 1 MiB leaves room for WAL and shared-memory growth around them.
RESERVE_BYTES = 1 << 20


class DiskReserve:
    """The reserve file of one database; ``path`` is the database file."""

    def __init__(self, database: Path, size: int = RESERVE_BYTES) -> None:
        self.path = database.with_name(database.name + "-reserve")
        self.size = size

    def ensure(self) -> bool:
        """Allocate the reserve if it is missing; False (and a warning) if the disk has no room.

        A store without its reserve still works: only a later full disk may leave the failed
        job unrecorded, so this warns instead of failing the command that opened the store."""
        try:
            if self.path.stat().st_size >= self.size:
                return True
        except FileNotFoundError:
            pass
        try:
            with open(self.path, "wb") as file:
                _allocate(file, self.size)
        except OSError as exc:
            self.path.unlink(missing_ok=True)
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            logger.warning(
                "could not set aside %d KB of disk beside %s (%s)%s",
                self.size // 1024,
                self.path.parent,
                exc.strerror or exc,
                ": the disk is nearly full" if full else "",
            )
            return False
        return True

    def release(self) -> None:
        """Give the space back (the disk is full): the writes that record the failure need it."""
        if self.path.exists():
            self.path.unlink()
            logger.info("the disk is full: released %s for the bookkeeping writes", self.path.name)


def _allocate(file: BinaryIO, size: int) -> None:
    """Really allocate the blocks: a sparse file would reserve nothing."""
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(file.fileno(), 0, size)
    else:  # macOS has no posix_fallocate; written zeros take real blocks there
        file.write(bytes(size))
