"""JobProgress: per-space counters, checkpoints of finished spaces, a bar that never goes back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from confluence_rag.ingest.progress import COUNTER_NAMES, JobProgress


def test_counters_sum_over_spaces_and_finished_spaces_survive_a_restart() -> None:
    progress = JobProgress()
    progress.declare_spaces(["DEV", "OPS"])
    progress.count("DEV", "pages_listed", 3)
    progress.count("DEV", "pages_processed", 3)
    progress.count("DEV", "pages_added", 3)
    progress.finish_space("DEV")
    progress.count("OPS", "pages_listed", 2)
    assert progress.counters()["pages_listed"] == 5
    assert set(progress.counters()) == set(COUNTER_NAMES)

    # A resumed attempt restores the finished space and recounts only the other one.
    resumed = JobProgress(finished_spaces=progress.finished_spaces)
    resumed.declare_spaces(["DEV", "OPS"])
    assert resumed.is_finished("DEV") and not resumed.is_finished("OPS")
    assert resumed.counters()["pages_listed"] == 3
    assert resumed.counters()["pages_added"] == 3


def test_unknown_counter_is_refused() -> None:
    with pytest.raises(KeyError):
        JobProgress().count("DEV", "pages_eaten")


def test_percent_is_monotonic_while_the_total_grows() -> None:
    progress = JobProgress(stage="processing")
    progress.declare_spaces(["DEV"])
    seen = []
    for _ in range(10):
        progress.count("DEV", "pages_listed", 10)
        progress.count("DEV", "pages_processed", 9)
        seen.append(progress.recompute_percent())
    progress.listing_done("DEV")
    progress.count("DEV", "pages_processed", 5)
    seen.append(progress.recompute_percent())
    assert seen == sorted(seen)
    assert 0 < seen[0] < 99 and seen[-1] <= 99  # 100 only once the job completes
    progress.complete()
    assert progress.percent == 100.0


def test_size_hint_gives_the_true_fraction() -> None:
    progress = JobProgress(stage="processing")
    progress.declare_spaces(["DEV"])
    progress.size_hint("DEV", 200)
    progress.count("DEV", "pages_listed", 100)
    progress.count("DEV", "pages_processed", 100)
    assert progress.recompute_percent() == pytest.approx(2 + 97 * 0.5, abs=0.1)


def test_max_pages_caps_the_total() -> None:
    progress = JobProgress(stage="processing")
    progress.declare_spaces(["DEV"])
    progress.max_pages = 10
    progress.size_hint("DEV", 1000)
    progress.count("DEV", "pages_listed", 10)
    progress.count("DEV", "pages_unchanged", 10)
    assert progress.recompute_percent() == 99.0


def test_percent_never_drops_below_a_restored_value() -> None:
    progress = JobProgress(stage="checking", percent=60.0)
    progress.declare_spaces(["DEV"])
    progress.count("DEV", "pages_listed", 1)
    assert progress.recompute_percent() == 60.0


def test_log_is_bounded_and_stamped() -> None:
    progress = JobProgress(log_limit=3)
    for n in range(5):
        progress.log(f"line {n}", now=datetime(2025, 1, 1, 12, 0, n, tzinfo=UTC))
    assert progress.snapshot()["log"] == ["12:00:02 line 2", "12:00:03 line 3", "12:00:04 line 4"]


def test_version_changes_only_on_change() -> None:
    progress = JobProgress()
    before = progress.version
    progress.set_stage("queued")
    progress.count("DEV", "pages_listed", 0)
    assert progress.version == before
    progress.set_stage("processing")
    assert progress.version == before + 1
