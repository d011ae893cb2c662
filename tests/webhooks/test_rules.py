"""Pure rules: which units a run reads and in which order, how targets merge, when events are
due, how the coalescing window stretches, what events a batch asks for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.runs.queue import folded_targets
from app.runs.targets import RunTargets, TargetUnit
from app.sync.context import Coverage
from app.sync.plan import UnitState, plan_units, reconcile_quota
from app.webhooks.applier import coalescing_window, due, targets_of
from app.webhooks.models import WebhookEvent

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def state(age: timedelta | None) -> UnitState:
    when = None if age is None else NOW - age
    return UnitState(cursor=when, last_success_at=when)


def keys(units: list[object]) -> list[tuple[str, int | None]]:
    return [(u.stream, u.project_id) for u in units]  # type: ignore[attr-defined]


class TestPlan:
    def test_a_normal_run_reads_every_unit_stalest_first(self) -> None:
        states = {
            ("rfis", 1): state(HOUR),
            ("rfis", 2): state(3 * HOUR),
            ("users", None): state(2 * HOUR),
        }
        plan = plan_units(
            streams=["projects", "users", "rfis"],
            project_ids=[1, 2, 3],
            states=states,
            targets=None,
            coverage=None,
            full_refresh=False,
            now=NOW,
        )
        assert keys(plan) == [("rfis", 3), ("rfis", 2), ("users", None), ("rfis", 1)]
        assert not any(u.target or u.reconcile for u in plan)

    def test_targets_come_first_oldest_event_first_and_a_targeted_run_stops_there(self) -> None:
        targets = RunTargets(
            units=[
                TargetUnit(stream="rfis", project_id=2, first_event_at=NOW),
                TargetUnit(stream="users", project_id=None, first_event_at=NOW - HOUR),
                TargetUnit(stream="submittals", project_id=1, first_event_at=NOW),  # unselected
                TargetUnit(stream="rfis", project_id=None, first_event_at=NOW),  # no project
                TargetUnit(stream="projects", project_id=None, first_event_at=NOW),  # read apart
            ]
        )
        plan = plan_units(
            streams=["projects", "users", "rfis"],
            project_ids=[1, 2],
            states={},
            targets=targets,
            coverage=None,
            full_refresh=False,
            now=NOW,
        )
        assert keys(plan) == [("users", None), ("rfis", 2)] and all(u.target for u in plan)
        whole = targets.model_copy(update={"whole": True})
        plan = plan_units(
            streams=["projects", "users", "rfis"],
            project_ids=[1, 2],
            states={},
            targets=whole,
            coverage=None,
            full_refresh=False,
            now=NOW,
        )
        assert keys(plan) == [("users", None), ("rfis", 2), ("rfis", 1)]

    def test_covered_units_are_read_when_never_read_in_a_gap_repaired_or_due(self) -> None:
        covered_at = NOW - 10 * HOUR
        coverage = Coverage(
            since={"rfis": covered_at},
            interval=timedelta(hours=24),
            repair_from=NOW - 2 * HOUR,
            reconciled_last_hour=0,
        )
        states = {
            ("rfis", 1): state(HOUR),  # fresh: covered by events
            ("rfis", 2): state(11 * HOUR),  # read before the stream was covered: a gap
            ("rfis", 3): state(3 * HOUR),  # before discarded deliveries: repaired
            # ("rfis", 4) never read
            ("users", None): state(HOUR),  # not covered: read as usual
        }
        plan = plan_units(
            streams=["users", "rfis"],
            project_ids=[1, 2, 3, 4],
            states=states,
            targets=None,
            coverage=coverage,
            full_refresh=False,
            now=NOW,
        )
        assert keys(plan) == [("rfis", 4), ("rfis", 2), ("rfis", 3), ("users", None)]
        assert [u.reconcile for u in plan] == [True, True, True, False]
        # A full refresh ignores coverage.
        full = plan_units(
            streams=["users", "rfis"],
            project_ids=[1, 2, 3, 4],
            states=states,
            targets=None,
            coverage=coverage,
            full_refresh=True,
            now=NOW,
        )
        assert len(full) == 5

    def test_units_due_by_the_interval_are_limited_to_an_even_share_per_hour(self) -> None:
        coverage = Coverage(since={"rfis": NOW - 1000 * HOUR}, interval=timedelta(hours=24))
        states = {("rfis", p): state((30 + p) * HOUR) for p in range(1, 49)}  # all due
        plan = plan_units(
            streams=["rfis"],
            project_ids=list(range(1, 49)),
            states=states,
            targets=None,
            coverage=coverage,
            full_refresh=False,
            now=NOW,
        )
        assert reconcile_quota(48, coverage) == 3  # ceil(48 / 24 * 1.25)
        assert keys(plan) == [("rfis", 48), ("rfis", 47), ("rfis", 46)]
        spent = Coverage(since=coverage.since, interval=coverage.interval, reconciled_last_hour=3)
        assert reconcile_quota(48, spent) == 0

    def test_a_continuation_reads_only_what_the_run_before_did_not_reach(self) -> None:
        window = NOW - HOUR
        states = {
            ("rfis", 1): UnitState(cursor=window, last_success_at=window),
            ("rfis", 2): state(5 * HOUR),
            ("budget_views", 1): UnitState(cursor=None, last_success_at=window + HOUR / 2),
            ("budget_views", 2): UnitState(cursor=None, last_success_at=NOW - 5 * HOUR),
        }
        plan = plan_units(
            streams=["rfis", "budget_views"],
            project_ids=[1, 2],
            states=states,
            targets=RunTargets(whole=True, only_staler_than=window),
            coverage=None,
            full_refresh=False,
            now=NOW,
        )
        assert sorted(keys(plan)) == [("budget_views", 2), ("rfis", 2)]


class TestTargets:
    def test_merging_unions_ids_keeps_the_earliest_event_and_the_widest_reach(self) -> None:
        first = RunTargets(
            units=[TargetUnit(stream="rfis", project_id=1, changed=[3, 1], first_event_at=NOW)]
        )
        second = RunTargets(
            units=[
                TargetUnit(
                    stream="rfis", project_id=1, changed=[2], deleted=[9], first_event_at=NOW - HOUR
                ),
                TargetUnit(stream="users", project_id=None, changed=[5]),
            ],
            whole=True,
            only_staler_than=NOW,
        )
        merged = first.merge(second)
        rfis = next(u for u in merged.units if u.stream == "rfis")
        assert rfis.changed == [1, 2, 3] and rfis.deleted == [9]
        assert rfis.first_event_at == NOW - HOUR
        assert len(merged.units) == 2
        assert merged.whole and merged.only_staler_than == NOW  # targeted + continuation
        everything = RunTargets(whole=True).merge(second)
        assert everything.whole and everything.only_staler_than is None

    def test_a_queued_run_asked_for_again(self) -> None:
        events = RunTargets(units=[TargetUnit(stream="rfis", project_id=1)])
        assert folded_targets(None, None) is None  # a normal run stays one
        into_normal = folded_targets(None, events)
        assert into_normal is not None and into_normal.whole and into_normal.units == events.units
        normal_again = folded_targets(events, None)
        assert normal_again is not None and normal_again.whole
        continuation = RunTargets(whole=True, only_staler_than=NOW)
        scheduled = folded_targets(continuation, None)
        assert scheduled is not None and scheduled.only_staler_than is None


class TestCoalescing:
    def test_events_are_due_after_their_window_once_the_burst_pauses(self) -> None:
        second = timedelta(seconds=1)
        assert not due(2.0, 1 * second, 1 * second)  # too young
        assert due(2.0, 2 * second, 1 * second)  # the burst paused half a window
        assert not due(2.0, 3 * second, 0.2 * second)  # still arriving
        assert due(2.0, 6 * second, 0 * second)  # three windows: read whatever comes

    def test_the_window_stretches_as_the_hours_plan_is_spent(self) -> None:
        assert coalescing_window(2.0, 0.3) == 2.0
        assert coalescing_window(2.0, 0.5) == 2.0
        assert coalescing_window(2.0, 0.75) == 31.0
        assert coalescing_window(2.0, 1.0) == 60.0
        assert coalescing_window(2.0, 3.0) == 60.0

    def test_a_batch_asks_for_its_units_a_changed_then_deleted_record_only_deleted(self) -> None:
        def event(
            stream: str, project: int | None, rid: int, kind: str, minute: int
        ) -> WebhookEvent:
            return WebhookEvent(
                stream=stream,
                project_id=project,
                resource_id=rid,
                event_type=kind,
                occurred_at=NOW + timedelta(minutes=minute),
            )

        batch = [
            event("rfis", 1, 10, "update", 5),
            event("rfis", 1, 11, "create", 3),
            event("rfis", 1, 10, "delete", 6),
            event("users", None, 7, "update", 1),
            event("rfis", 1, 11, "update", 4),
        ]
        targets = targets_of(batch)
        assert [(u.stream, u.project_id) for u in targets.units] == [("users", None), ("rfis", 1)]
        rfis = targets.units[1]
        assert rfis.changed == [11] and rfis.deleted == [10]
        assert rfis.first_event_at == NOW + timedelta(minutes=3)
        assert not targets.whole
