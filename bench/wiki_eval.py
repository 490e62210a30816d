"""Search quality on Confluence-shaped pages: the sample site and our own judged queries.

    .venv/bin/python bench/wiki_eval.py                 # all queries, three retrievers, titles
    .venv/bin/python bench/wiki_eval.py --no-titles     # skip the exact-title check
    .venv/bin/python bench/wiki_eval.py --json out.json # also write every figure and ranking
    .venv/bin/python bench/wiki_eval.py --index /tmp/wiki  # crawl once, then only re-measure

The whole product path, as a user runs it: ``confluence-rag emulator`` (the sample site) ->
``confluence-rag add`` (crawl with the default local model into a fresh SQLite file) ->
``confluence-rag serve`` -> ``POST /api/search`` (pages mode, top 10) for every query in
``bench/wiki_queries/*.json``, with the hybrid, keyword and semantic retrievers. It prints
nDCG@10, MRR@10 and Recall@10 overall and per kind of query, then "exact title -> page first":
every page's own title searched (hybrid), and how often that page ranks first / in the top 3.

The queries were written from the reader's side, before anyone looked at what the engine
returns; each names the sample-site page ids that answer it (grade 2) or help (grade 1).
This is the search-ranking issue's development set: change ranking, run this, compare.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.beir import mrr_at_k, ndcg_at_k, recall_at_k  # noqa: E402

from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL  # noqa: E402
from confluence_rag.emulator.loader import SAMPLE_SITE, read_site_manifest  # noqa: E402

QUERIES_DIR = Path(__file__).resolve().parent / "wiki_queries"
# What a query tests: an exact identifier (error code, config key, ticket), a name only a code
# block holds, a value in a table row, advice in a panel, a deep page's title words plus a
# section, a question sharing few words with its answer; then plain questions and keywords.
KINDS = ("identifier", "code", "table", "panel", "nested", "paraphrase", "question", "keyword")
RETRIEVERS = ("hybrid", "keyword", "semantic")
K = 10
Rankings = dict[str, dict[str, list[str]]]  # retriever -> query id -> ranked page ids
STARTUP_SECONDS = 600  # the first model load on a busy two-core machine


@dataclass(frozen=True, slots=True)
class Query:
    id: str
    text: str
    kind: str
    relevant: dict[str, int]


def load_queries(folder: Path = QUERIES_DIR) -> list[Query]:
    """Every query of every ``*.json`` file in ``folder``, checked for shape."""
    queries: list[Query] = []
    for path in sorted(folder.glob("*.json")):
        for raw in json.loads(path.read_text(encoding="utf-8")):
            query = Query(str(raw["id"]), str(raw["query"]), str(raw["kind"]), raw["relevant"])
            if query.kind not in KINDS:
                raise ValueError(f"{path}: query {query.id} has unknown kind {query.kind!r}")
            if not any(grade > 0 for grade in query.relevant.values()):
                raise ValueError(f"{path}: query {query.id} judges no page relevant")
            queries.append(query)
    ids = [query.id for query in queries]
    if len(set(ids)) != len(ids):
        raise ValueError("query ids repeat across the files")
    return queries


def site_pages(folder: Path = SAMPLE_SITE) -> dict[str, str]:
    """Page id -> title for every page and blog post of the site."""
    pages: dict[str, str] = {}
    for space in read_site_manifest(folder)["spaces"]:
        for path in sorted((folder / space["key"]).glob("*.json")):
            raw = json.loads(path.read_text(encoding="utf-8"))
            pages[str(raw["id"])] = str(raw["title"])
    return pages


def score(rankings: dict[str, list[str]], queries: Sequence[Query]) -> dict[str, dict[str, float]]:
    """Mean nDCG@10, MRR@10 and Recall@10, overall and per kind (with the query count)."""
    groups: dict[str, list[Query]] = defaultdict(list)
    for query in queries:
        groups["all"].append(query)
        groups[query.kind].append(query)
    table: dict[str, dict[str, float]] = {}
    for group, members in groups.items():
        table[group] = {
            "ndcg@10": statistics.fmean(ndcg_at_k(rankings[q.id], q.relevant, K) for q in members),
            "mrr@10": statistics.fmean(mrr_at_k(rankings[q.id], q.relevant, K) for q in members),
            "recall@10": statistics.fmean(
                recall_at_k(rankings[q.id], q.relevant, K) for q in members
            ),
            "queries": float(len(members)),
        }
    return table


# --- the product, as processes --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            if httpx.get(url, timeout=5).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{what} exited with code {process.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not answer within {STARTUP_SECONDS} s")
        time.sleep(0.5)


@contextmanager
def running(command: list[str], env: dict[str, str], url: str, what: str) -> Iterator[None]:
    """``command`` running until the block ends; its output goes to a log in the data dir."""
    log = Path(env["CONFLUENCE_RAG_DATA_DIR"]) / f"{command[1]}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_for(url, process, what, log)
        yield
    finally:
        process.terminate()
        process.wait(timeout=60)


def cli() -> list[str]:
    """The installed ``confluence-rag`` command of this interpreter's environment."""
    return [str(Path(sys.executable).with_name("confluence-rag"))]


def search(client: httpx.Client, text: str, retriever: str) -> list[str]:
    body = {"query": text, "mode": "pages", "limit": K, "retriever": retriever}
    response = client.post("/api/search", json=body)
    response.raise_for_status()
    # The API's page id is the index's key, "<source id>:<Confluence page id>".
    return [hit["page_id"].rsplit(":", 1)[-1] for hit in response.json()["results"]]


def evaluate(client: httpx.Client, queries: Sequence[Query]) -> Rankings:
    """Every query with every retriever."""
    return {
        retriever: {query.id: search(client, query.text, retriever) for query in queries}
        for retriever in RETRIEVERS
    }


def title_ranks(client: httpx.Client, pages: dict[str, str]) -> dict[str, int | None]:
    """Page id -> rank (1-based) of that page when its own title is the query; None past 10."""
    ranks: dict[str, int | None] = {}
    for page_id, title in pages.items():
        ranked = search(client, title, "hybrid")
        ranks[page_id] = ranked.index(page_id) + 1 if page_id in ranked else None
    return ranks


# --- report ----------------------------------------------------------------------------------


def print_table(results: dict[str, dict[str, dict[str, float]]]) -> None:
    groups = ["all", *KINDS]
    print(f"{'':16s}" + "".join(f"{r:>27s}" for r in RETRIEVERS))
    print(f"{'kind (n)':16s}" + "    nDCG    MRR  Recall@10" * len(RETRIEVERS))
    for group in groups:
        if group not in results["hybrid"]:
            continue
        count = int(results["hybrid"][group]["queries"])
        row = f"{group} ({count})"
        cells = "".join(
            f"  {m['ndcg@10']:6.3f} {m['mrr@10']:6.3f} {m['recall@10']:10.3f}"
            for m in (results[r][group] for r in RETRIEVERS)
        )
        print(f"{row:16s}{cells}")


def print_titles(ranks: dict[str, int | None], pages: dict[str, str]) -> None:
    total = len(ranks)
    first = sum(1 for rank in ranks.values() if rank == 1)
    top3 = sum(1 for rank in ranks.values() if rank is not None and rank <= 3)
    print(f"\nexact title -> page first: {first}/{total} ({first / total:.1%}); ", end="")
    print(f"top 3: {top3}/{total} ({top3 / total:.1%})")
    for page_id, rank in sorted(ranks.items(), key=lambda item: item[1] or 99):
        if rank != 1:
            print(f"  rank {rank or '>10':>3}: {pages[page_id]}")


def crawl(env: dict[str, str], pages: dict[str, str]) -> None:
    """The sample site crawled into ``env``'s data dir by the CLI, as a user adds it."""
    port = _free_port()
    site = f"http://127.0.0.1:{port}"
    emulator = [*cli(), "emulator", "--port", str(port)]
    with running(emulator, env, f"{site}/wiki/rest/api/space", "the emulator"):
        started = time.monotonic()
        add = [*cli(), "add", f"{site}/wiki", "--space", "ENG", "--space", "OPS"]
        add += ["--email", DEMO_EMAIL, "--flavour", "cloud"]
        token = {"CONFLUENCE_API_TOKEN": DEMO_API_TOKEN}
        subprocess.run(add, env={**env, **token}, check=True, stdout=subprocess.DEVNULL)
        print(f"crawled {len(pages)} pages in {time.monotonic() - started:.0f} s")


def measure(
    env: dict[str, str], queries: list[Query], pages: dict[str, str], titles: bool
) -> tuple[Rankings, dict[str, int | None]]:
    """Every query with every retriever, then (if ``titles``) every page's title, via serve."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}"
    serve = [*cli(), "serve", "--port", str(port)]
    with (
        running(serve, env, f"{api}/health", "the API"),
        httpx.Client(base_url=api, timeout=120) as client,
    ):
        return evaluate(client, queries), title_ranks(client, pages) if titles else {}


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    queries = load_queries()
    pages = site_pages()
    unknown = {p for q in queries for p in q.relevant if p not in pages}
    if unknown:
        raise SystemExit(f"queries judge pages the site does not have: {sorted(unknown)}")
    with tempfile.TemporaryDirectory(prefix="wiki-eval-") as scratch:
        data_dir = Path(args.index or scratch)
        env = {**os.environ, "CONFLUENCE_RAG_DATA_DIR": str(data_dir), "CONFLUENCE_API_TOKEN": ""}
        env.pop("CONFLUENCE_RAG_DATABASE_URL", None)
        if not (data_dir / "confluence-rag.sqlite3").exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            crawl(env, pages)
        rankings, ranks = measure(env, queries, pages, args.titles)
    results = {retriever: score(rankings[retriever], queries) for retriever in RETRIEVERS}
    print(f"\n{len(queries)} queries over {len(pages)} pages, pages mode, top {K}\n")
    print_table(results)
    if ranks:
        print_titles(ranks, pages)
    if args.json:
        report = {"results": results, "rankings": rankings, "title_ranks": ranks}
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-titles", dest="titles", action="store_false",
                        help="skip the exact-title check (one search per page)")  # fmt: skip
    parser.add_argument("--json", help="also write every figure and ranking to this file")
    parser.add_argument("--index", help="keep the crawled index in this folder and reuse it on "
                        "the next run (only ranking changed: no crawl)")  # fmt: skip
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
