"""The fleet driver's outcome log: counts in memory, rows spooled to disk and read back in manifest order."""

from odist.fleet.outcome_log import OutcomeLog
from odist.fleet.results import stream_scores
from odist.fleet.student_actor import StreamOutcome
from odist.states import Outcome


def test_the_log_counts_outcomes_and_gives_rows_back_in_manifest_order():
    log = OutcomeLog()
    log.add(StreamOutcome("c", Outcome.FAILED, error="corrupt"), position=2)
    log.add(StreamOutcome("a", Outcome.DONE, summary={"frames": 24, "big": "x" * 10_000}, frames=24, seconds=1.5),
            position=0)
    log.add(StreamOutcome("b", Outcome.SKIPPED), position=1)
    counts = log.counts
    assert (counts.done, counts.failed, counts.skipped, counts.frames, counts.finished) == (1, 1, 1, 24, 3)
    rows = log.rows()
    assert [row["stream_id"] for row in rows] == ["a", "b", "c"]
    assert rows[0] == {"stream_id": "a", "status": "done", "frames": 24, "seconds": 1.5, "error": None,
                       **stream_scores({"frames": 24})}  # the scores, not the whole summary
    assert "big" not in rows[0]
    assert rows[2]["error"] == "corrupt"
    log.add(StreamOutcome("d", Outcome.DONE, frames=1), position=3)  # the log keeps taking rows after a read
    assert [row["stream_id"] for row in log.rows()] == ["a", "b", "c", "d"]
    log.close()
