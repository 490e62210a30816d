"""Benchmark: storage format -> Markdown conversion throughput.

Converts every page of the emulator's generated space (default 4,000 pages, the same generator
the emulator serves) with ``storage_to_markdown`` + ``extract_code_blocks``, single-threaded,
and prints pages/s, MB/s and per-page latency percentiles. Also times single 1 MB pages: a
prose-heavy one (an ordinary long page) and a markup-dense one (a tag every ~25 bytes).

    .venv/bin/python bench/convert.py [--pages 4000] [--seed 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

from confluence_rag.content.code_blocks import extract_code_blocks
from confluence_rag.content.storage import ConversionContext, storage_to_markdown
from confluence_rag.emulator.corpus import generate_space

_PROSE = (
    "Deployments roll out region by region; each stage waits for the health checks of the "
    "previous one and stops on the first failed probe, so a bad build never reaches every "
    "customer at once. "
)


def _one_megabyte(kind: str) -> str:
    if kind == "prose":
        unit = (
            f"<h2>Rollout</h2><p>{_PROSE * 4}</p><p>{_PROSE}See "
            '<ac:link><ri:page ri:content-title="Release checklist"/></ac:link>.</p>'
            '<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">bash'
            "</ac:parameter><ac:plain-text-body><![CDATA[kubectl rollout status deploy/api]]>"
            "</ac:plain-text-body></ac:structured-macro><table><tr><th>Stage</th><th>Owner</th>"
            f"</tr><tr><td>canary</td><td>SRE</td></tr></table><ul><li>{_PROSE}</li></ul>"
        )
    else:
        unit = (
            "<h2>S</h2><p>Some <strong>bold</strong> words and a "
            '<ac:link><ri:page ri:content-title="Other"/></ac:link> link.</p>'
            '<ac:structured-macro ac:name="info"><ac:rich-text-body><p>Note</p>'
            "</ac:rich-text-body></ac:structured-macro><table><tr><th>k</th><th>v</th></tr>"
            "<tr><td>a</td><td>1</td></tr><tr><td>b</td><td>2</td></tr></table>"
            "<ul><li>one</li><li>two <em>three</em></li></ul>"
        )
    return unit * (1_000_000 // len(unit) + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    started = time.perf_counter()
    space = generate_space(args.seed, args.pages, space_key="BENCH")
    generated = time.perf_counter() - started
    titles = {c.id: c.title for c in space.contents}
    base = "https://bench.atlassian.net/wiki"
    ctx = ConversionContext(base_url=base, space_key="BENCH", page_titles=titles)

    latencies: list[float] = []
    total_bytes = 0
    code_blocks = 0
    cpu_started = time.process_time()
    wall_started = time.perf_counter()
    for content in space.contents:
        page_ctx = ConversionContext(
            base_url=base, space_key="BENCH", page_id=content.id, page_titles=ctx.page_titles
        )
        t0 = time.perf_counter()
        markdown = storage_to_markdown(content.body, page_ctx)
        code_blocks += len(extract_code_blocks(markdown))
        latencies.append(time.perf_counter() - t0)
        total_bytes += len(content.body.encode("utf-8"))
    wall = time.perf_counter() - wall_started
    cpu = time.process_time() - cpu_started

    pages = len(space.contents)
    ordered = sorted(latencies)
    print(f"generated {pages} pages ({total_bytes / 1e6:.1f} MB storage) in {generated:.1f} s")
    print(f"converted {pages} pages in {wall:.2f} s wall / {cpu:.2f} s CPU (1 thread)")
    print(f"  pages/s        {pages / wall:,.0f} wall, {pages / cpu:,.0f} per CPU-second")
    print(f"  MB/s           {total_bytes / 1e6 / wall:.2f}")
    p50, p95 = statistics.median(ordered), ordered[int(0.95 * (pages - 1))]
    print(f"  per page ms    p50 {p50 * 1e3:.2f}  p95 {p95 * 1e3:.2f}  max {ordered[-1] * 1e3:.1f}")
    print(f"  code blocks    {code_blocks}")

    for kind in ("prose", "dense"):
        page = _one_megabyte(kind)
        storage_to_markdown(page[:10_000], ctx)
        t0 = time.process_time()
        storage_to_markdown(page, ctx)
        elapsed = time.process_time() - t0
        print(f"1 MB {kind:5} page  {elapsed:.2f} s CPU ({len(page) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
