"""`backups` in the stack config: on by default with 7 daily, 4 weekly, 6 monthly; every bad value
refused naming the key, the value and what is allowed, all of them in one run."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, parse_config


def _refused(values: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(values)
    return [str(i) for i in caught.value.issues]


def test_backups_are_on_by_default_with_the_documented_retention(site_values):
    backups = parse_config(site_values).backups  # type: ignore[union-attr]
    assert (backups.enabled, backups.time) == (True, "02:15")
    assert (backups.keep_daily, backups.keep_weekly, backups.keep_monthly) == (7, 4, 6)


def test_retention_and_time_are_set_per_site(site_values):
    values = dict(site_values, backups={"time": "23:30", "keepDaily": 14, "keepWeekly": 0, "keepMonthly": 12})
    backups = parse_config(values).backups  # type: ignore[union-attr]
    assert (backups.time, backups.keep_daily, backups.keep_weekly, backups.keep_monthly) == (
        "23:30",
        14,
        0,
        12,
    )


@pytest.mark.parametrize(
    ("backups", "expected"),
    [
        ({"time": "25:00"}, "twinhost:backups.time: must be a time of day as HH:MM (24-hour, UTC)"),
        ({"time": "2:15"}, "twinhost:backups.time: must be a time of day as HH:MM"),
        ({"keepDaily": -1}, "twinhost:backups.keepDaily:"),
        ({"keepMonthly": 1000}, "twinhost:backups.keepMonthly:"),
        ({"keepYearly": 2}, "twinhost:backups.keepYearly:"),
        ({"keepDaily": 0, "keepWeekly": 0, "keepMonthly": 0}, "twinhost:backups: keeps no snapshot"),
    ],
)
def test_a_bad_backup_setting_names_the_key(site_values, backups, expected):
    problems = _refused(dict(site_values, backups=backups))
    assert any(p.startswith(expected) for p in problems), problems


def test_every_backup_problem_is_reported_at_once(site_values):
    problems = _refused(dict(site_values, backups={"time": "noon", "keepWeekly": -2}))
    assert sum(p.startswith("twinhost:backups.") for p in problems) == 2, problems


def test_disabled_backups_may_keep_nothing(site_values):
    values = dict(site_values, backups={"enabled": False, "keepDaily": 0, "keepWeekly": 0, "keepMonthly": 0})
    assert parse_config(values).backups.enabled is False  # type: ignore[union-attr]
