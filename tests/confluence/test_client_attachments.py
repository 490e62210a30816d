"""Attachments: listed across pages of the listing, downloaded as a stream, capped in size."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from confluence_rag.confluence.client import ConfluenceClient
from confluence_rag.confluence.models import Attachment
from confluence_rag.emulator import EmulatorServer, FaultRule
from confluence_rag.errors import AttachmentTooLarge, ContentNotFound
from confluence_rag.settings import Settings
from tests.confluence.conftest import RecordedSleep, auth_for, run

Factory = Callable[..., EmulatorServer]


def blob(size: int, seed: int) -> bytes:
    chunks = []
    counter = 0
    while sum(map(len, chunks)) < size:
        chunks.append(hashlib.sha256(f"{seed}:{counter}".encode()).digest())
        counter += 1
    return b"".join(chunks)[:size]


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_list_and_download_every_attachment(
    emulator_factory: Factory, settings: Settings, flavour: str
) -> None:
    server = emulator_factory(flavour, pages=5)
    page_id = sorted(server.state.current_ids("DEMO"))[1]
    existing = {a.id for a in server.state.attachments_of(page_id)}
    # more than one page of the attachment listing (the server pages it by 200)
    added = {
        server.state.add_attachment(page_id, f"file {n}.bin", blob(100 + n, n)).id: blob(100 + n, n)
        for n in range(205)
    }
    big = server.state.add_attachment(
        page_id, "big report.pdf", blob(300_000, 999), "application/pdf"
    )

    async def fetch() -> tuple[list[Attachment], dict[str, bytes]]:
        async with ConfluenceClient(server.site_url, auth_for(server), settings=settings) as c:
            listed = await c.list_attachments(page_id)
            contents = {}
            sample = set(sorted(added)[::20]) | {big.id}  # downloading all 206 adds nothing
            for attachment in listed:
                if attachment.id in sample:
                    parts = [chunk async for chunk in c.download_attachment(attachment)]
                    contents[attachment.id] = b"".join(parts)
            return listed, contents

    listed, contents = run(fetch())
    assert len(listed) == len({a.id for a in listed}) == len(existing) + len(added) + 1
    assert {a.id for a in listed} == existing | set(added) | {big.id}
    assert len(contents) == 12
    for attachment_id, data in contents.items():
        assert data == (big.data if attachment_id == big.id else added[attachment_id])
    assert contents[big.id] == big.data
    pdf = next(a for a in listed if a.id == big.id)
    assert (pdf.media_type, pdf.file_size, pdf.page_id, pdf.title) == (
        "application/pdf",
        300_000,
        page_id,
        "big report.pdf",
    )


def test_size_cap_stops_the_download(emulator_factory: Factory, settings: Settings) -> None:
    server = emulator_factory("cloud", pages=5)
    page_id = sorted(server.state.current_ids("DEMO"))[0]
    record = server.state.add_attachment(page_id, "huge.bin", blob(200_000, 5))

    async def attempt() -> None:
        async with ConfluenceClient(server.site_url, auth_for(server), settings=settings) as c:
            attachment = next(a for a in await c.list_attachments(page_id) if a.id == record.id)
            # refused before any byte when the listing already says it is too big
            requests_before = c.stats.requests
            with pytest.raises(AttachmentTooLarge, match="max_attachment_bytes"):
                [chunk async for chunk in c.download_attachment(attachment, max_bytes=1000)]
            assert c.stats.requests == requests_before
            # and while streaming when the listing did not say (or lied)
            unknown_size = Attachment(
                id=attachment.id,
                page_id=page_id,
                title=attachment.title,
                media_type=attachment.media_type,
                file_size=None,
                download_path=attachment.download_path,
            )
            received = 0
            with pytest.raises(AttachmentTooLarge):
                async for chunk in c.download_attachment(unknown_size, max_bytes=50_000):
                    received += len(chunk)
            assert received <= 50_000
            assert c.limiter.in_flight == 0  # the slot was given back

    run(attempt())


def test_download_retries_before_the_first_byte(
    emulator_factory: Factory, settings: Settings
) -> None:
    server = emulator_factory("datacenter", pages=5)
    page_id = sorted(server.state.current_ids("DEMO"))[0]
    record = server.state.add_attachment(page_id, "data.csv", b"a,b\n1,2\n", "text/csv")
    server.state.add_fault(FaultRule(kind="503", times=1, path="/download/"))
    server.state.add_fault(FaultRule(kind="drop", times=1, path="/download/"))
    sleep = RecordedSleep()

    async def fetch() -> bytes:
        async with ConfluenceClient(
            server.site_url, auth_for(server), settings=settings, sleep=sleep
        ) as c:
            attachment = next(a for a in await c.list_attachments(page_id) if a.id == record.id)
            return b"".join([chunk async for chunk in c.download_attachment(attachment)])

    assert run(fetch()) == b"a,b\n1,2\n"
    assert len(sleep.calls) == 2


def test_missing_attachment_is_content_not_found(
    emulator_factory: Factory, settings: Settings
) -> None:
    server = emulator_factory("cloud", pages=5)
    page_id = sorted(server.state.current_ids("DEMO"))[0]
    ghost = Attachment(
        id="att1",
        page_id=page_id,
        title="gone.txt",
        media_type="text/plain",
        file_size=None,
        download_path=f"/download/attachments/{page_id}/gone.txt",
    )

    async def attempt() -> None:
        async with ConfluenceClient(server.site_url, auth_for(server), settings=settings) as c:
            with pytest.raises(ContentNotFound, match="gone.txt"):
                [chunk async for chunk in c.download_attachment(ghost)]

    run(attempt())
