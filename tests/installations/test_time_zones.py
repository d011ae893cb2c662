"""Cron lines fire at their slot in the installation's IANA time zone; intervals are spread."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from app.core.database import create_engine
from app.core.migrations import alembic_config
from app.installations.schedules import (
    normalise_time_zone,
    parse_schedule,
    parse_time_zone,
    spread_offset,
)
from procore_sim.server import SimulatorServer
from tests.factories import RunningService, install_event, wait_until

NOW = datetime(2025, 7, 4, 12, 0, tzinfo=UTC)


class TestCronInATimeZone:
    def test_a_cron_line_is_read_in_its_time_zone(self) -> None:
        berlin = parse_schedule("0 2 * * *", "Europe/Berlin")
        assert berlin.next_run(NOW, 1) == datetime(2025, 7, 5, 0, 0, tzinfo=UTC)  # 02:00 CEST
        new_york = parse_schedule("0 9 * * 1-5", "America/New_York")
        # Friday 4 July 12:00 UTC is 08:00 in New York: 09:00 EDT the same day.
        assert new_york.next_run(NOW, 1) == datetime(2025, 7, 4, 13, 0, tzinfo=UTC)

    def test_the_slot_follows_daylight_saving_time(self) -> None:
        berlin = parse_schedule("0 6 * * *", "Europe/Berlin")
        winter = berlin.next_run(datetime(2025, 1, 10, 12, tzinfo=UTC), 1)
        summer = berlin.next_run(datetime(2025, 7, 10, 12, tzinfo=UTC), 1)
        assert (winter.hour, summer.hour) == (5, 4)  # 06:00 CET and 06:00 CEST

    def test_cron_lines_get_no_company_spread(self) -> None:
        schedule = parse_schedule("30 1 * * *")
        fires = {schedule.next_run(NOW, company_id) for company_id in range(1, 500)}
        assert fires == {datetime(2025, 7, 5, 1, 30, tzinfo=UTC)}
        assert not schedule.spread

    def test_consecutive_cron_fires_are_one_period_apart(self) -> None:
        schedule = parse_schedule("*/20 * * * *", "Asia/Kolkata")
        first = schedule.next_run(NOW, 5)
        assert schedule.next_run(first, 5) == first + timedelta(minutes=20)

    def test_intervals_are_spread_and_not_moved_by_the_time_zone(self) -> None:
        utc = parse_schedule("every 1h")
        tokyo = parse_schedule("every 1h", "Asia/Tokyo")
        assert utc.spread
        for company_id in (3, 77, 1234):
            at = tokyo.next_run(NOW, company_id)
            assert at == utc.next_run(NOW, company_id)
            assert (at - NOW).total_seconds() % 3600 == spread_offset(company_id, 3600) % 3600


class TestTimeZoneNames:
    @pytest.mark.parametrize(
        ("given", "stored"), [("UTC", "UTC"), ("utc", "UTC"), ("Europe/Berlin", "Europe/Berlin")]
    )
    def test_iana_names_are_accepted(self, given: str, stored: str) -> None:
        assert normalise_time_zone(given) == stored

    @pytest.mark.parametrize("name", ["Mars/Olympus", "CEST+2", "", "../../etc/passwd", "+02:00"])
    def test_anything_else_is_refused_with_examples(self, name: str) -> None:
        with pytest.raises(ValueError, match="not an IANA time zone name"):
            parse_time_zone(name)


class TestPatchingTheTimeZone:
    def test_time_zone_and_schedule_are_applied_and_shown(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.callback(install_event(company_id)).status_code == 202
        url = f"/admin/v1/installations/{company_id}"
        wait_until(lambda: service.admin.get(url).status_code == 200)
        assert service.admin.get(url).json()["time_zone"] == "UTC"
        answer = service.admin.patch(
            url, json={"schedule": "0 2 * * *", "time_zone": "America/Los_Angeles"}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["schedule"], body["time_zone"]) == ("0 2 * * *", "America/Los_Angeles")
        next_run = datetime.fromisoformat(body["next_run_at"])
        assert next_run.astimezone(parse_time_zone("America/Los_Angeles")).hour == 2
        assert (next_run.minute, next_run.second) == (0, 0)

        only_zone = service.admin.patch(url, json={"time_zone": "Asia/Tokyo"}).json()
        assert only_zone["schedule"] == "0 2 * * *"
        tokyo = datetime.fromisoformat(only_zone["next_run_at"])
        assert tokyo.astimezone(parse_time_zone("Asia/Tokyo")).hour == 2

    def test_unsupported_values_are_refused_naming_what_is_accepted(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.callback(install_event(company_id)).status_code == 202
        url = f"/admin/v1/installations/{company_id}"
        wait_until(lambda: service.admin.get(url).status_code == 200)
        bad_zone = service.admin.patch(url, json={"time_zone": "Mars/Olympus"})
        assert bad_zone.status_code == 400
        assert bad_zone.json()["error"]["message"].startswith("time_zone: ")
        seconds = service.admin.patch(url, json={"schedule": "every 90s"})
        assert seconds.status_code == 400
        message = seconds.json()["error"]["message"]
        assert "every 90s" in message and "every <n>m" in message and "cron" in message
        assert service.admin.get(url).json()["schedule"] == "every 1h"  # nothing changed


class TestMigration:
    def test_stored_second_intervals_become_minutes(self, database_url: str) -> None:
        config = alembic_config(database_url)
        command.upgrade(config, "0003")
        insert = sa.text(
            "INSERT INTO installations (company_id, environment, status, source, schedule, "
            "streams, paused, missing_projects, health, created_at, updated_at, version) "
            "VALUES (:cid, 'production', 'active', 'callback', :schedule, 'all', false, '[]', "
            "'{}', :now, :now, 1)"
        )
        rows = {1: "every 90s", 2: "EVERY 30S", 3: "every 15m", 4: "0 2 * * *"}

        async def fill() -> dict[int, tuple[str, str]]:
            engine = create_engine(database_url)
            try:
                async with engine.begin() as conn:
                    for cid, schedule in rows.items():
                        await conn.execute(insert, {"cid": cid, "schedule": schedule, "now": NOW})
                await asyncio.to_thread(command.upgrade, config, "head")
                async with engine.connect() as conn:
                    result = await conn.execute(
                        sa.text("SELECT company_id, schedule, time_zone FROM installations")
                    )
                    return {int(r[0]): (str(r[1]), str(r[2])) for r in result}
            finally:
                await engine.dispose()

        stored = asyncio.run(fill())
        assert stored == {
            1: ("every 2m", "UTC"),
            2: ("every 1m", "UTC"),
            3: ("every 15m", "UTC"),
            4: ("0 2 * * *", "UTC"),
        }
