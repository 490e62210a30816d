"""Run jobs in a separate process until one job finishes: the "worker" the SIGKILL test kills.

Usage: python crawl_worker.py JOB_ID   (settings from CONFLUENCE_RAG_* in the environment)
Prints ``ready`` once the runner has started, then the job's final status.
"""

from __future__ import annotations

import asyncio
import sys

from confluence_rag.services import build_services
from confluence_rag.settings import Settings


async def main(job_id: str) -> None:
    async with build_services(Settings()) as services:
        services.jobs.start()
        print("ready", flush=True)
        job = await services.jobs.wait(job_id)
        print(job.status, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
