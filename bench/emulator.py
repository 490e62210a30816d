"""How fast the Confluence emulator generates and serves a large space, so crawl benchmarks know
it is not their bottleneck.

    .venv/bin/python -m bench.emulator [--pages 4000] [--repeats 3] [--seed 1]

For each flavour: the generator's time for the space, then full walks over a real socket
(uvicorn on 127.0.0.1, one keep-alive httpx client) of CQL ``space = DEMO`` with
``expand=body.storage,version,ancestors,metadata.labels,space,history`` at the largest limit the
flavour serves with bodies (Data Center 50, Cloud 25), following ``_links.next``. Cloud also
walks v2 (``/wiki/api/v2/spaces/{id}/pages?body-format=storage&limit=250``). Figures are
medians of ``--repeats`` walks and include JSON parsing on the client side.
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx

from confluence_rag.emulator import EmulatorConfig, EmulatorServer, generate_space

EXPAND = "body.storage,version,ancestors,metadata.labels,space,history"


def walk_v1(server: EmulatorServer) -> tuple[int, int, int]:
    """(items, requests, bytes) of one full CQL walk with bodies."""
    items = requests = size = 0
    with httpx.Client(headers=server.auth_headers(), timeout=60) as http:
        params = {"cql": "space = DEMO", "expand": EXPAND, "limit": 1000}
        response = http.get(server.api_base + "/rest/api/content/search", params=params)
        while True:
            response.raise_for_status()
            body = response.json()
            items += len(body["results"])
            requests += 1
            size += len(response.content)
            next_link = body["_links"].get("next")
            if not next_link:
                return items, requests, size
            response = http.get(body["_links"]["base"] + next_link)


def walk_v2(server: EmulatorServer) -> tuple[int, int, int]:
    items = requests = size = 0
    with httpx.Client(base_url=server.site_url, headers=server.auth_headers(), timeout=60) as http:
        space_id = http.get("/wiki/api/v2/spaces", params={"keys": "DEMO"}).json()["results"][0][
            "id"
        ]
        url = f"/wiki/api/v2/spaces/{space_id}/pages"
        response = http.get(url, params={"body-format": "storage", "limit": 250})
        while True:
            response.raise_for_status()
            body = response.json()
            items += len(body["results"])
            requests += 1
            size += len(response.content)
            next_link = body["_links"].get("next")
            if not next_link:
                return items, requests, size
            response = http.get(next_link)


def measure(label: str, server: EmulatorServer, walker: object, repeats: int) -> str:
    rates: list[float] = []
    items = requests = size = 0
    for _ in range(repeats):
        started = time.perf_counter()
        items, requests, size = walker(server)  # type: ignore[operator]
        rates.append(items / (time.perf_counter() - started))
    rate = statistics.median(rates)
    mb_s = rate * size / items / 1e6 if items else 0.0
    return (
        f"| emulator {label} | {items} items, {requests} requests, {size / 1e6:.1f} MB | "
        f"**{rate:,.0f} pages/s** ({mb_s:.1f} MB/s), median of {repeats} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    timings = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        space = generate_space(args.seed, args.pages)
        timings.append(time.perf_counter() - started)
    megabytes = sum(len(c.body) for c in space.contents) / 1e6
    lines = [
        "| benchmark | data | result |",
        "|---|---|---|",
        f"| emulator generator, seed {args.seed} | {args.pages} pages, {megabytes:.1f} MB of "
        f"storage format | **{statistics.median(timings):.2f} s** "
        f"({args.pages / statistics.median(timings):,.0f} pages/s), median of {args.repeats} |",
    ]
    for flavour in ("datacenter", "cloud"):
        config = EmulatorConfig(flavour=flavour, pages=args.pages, seed=args.seed)  # type: ignore[arg-type]
        with EmulatorServer(config) as server:
            cap = config.limit_caps.body
            lines.append(
                measure(
                    f"CQL walk with bodies, {flavour} (cap {cap})", server, walk_v1, args.repeats
                )
            )
            if flavour == "cloud":
                lines.append(
                    measure("v2 walk with bodies, cloud (limit 250)", server, walk_v2, args.repeats)
                )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
