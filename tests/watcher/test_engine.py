"""The decision rules of the watcher, each test named after the rule it enforces."""

from __future__ import annotations

import copy
import datetime
import itertools
import json
import os

import pytest

from twinhost_watcher.backends import DnsError, RateLimitedError
from twinhost_watcher.config import parse_config
from twinhost_watcher.state import StateStore

from .conftest import A, B, Harness, MemoryBackend, site_config


def test_node_is_marked_down_only_after_failures_consecutive_failed_checks(both_up: Harness) -> None:
    h = both_up
    h.checker.health["linode"] = False
    h.ticks(2)
    assert h.backend.addresses == [A, B] and h.backend.sets == []
    assert h.events.named("node_down") == []
    assert [e["streak"] for e in h.events.named("check_failed")] == [1, 2]
    h.ticks(1)
    assert h.backend.sets == [[A]]
    [down] = h.events.named("node_down")
    assert down["node"] == "linode" and down["after_checks"] == 3


def test_node_is_marked_up_only_after_recoveries_consecutive_good_checks(both_up: Harness) -> None:
    h = both_up
    h.checker.health["linode"] = False
    h.ticks(3)
    assert h.backend.addresses == [A]
    h.checker.health["linode"] = True
    h.ticks(1)
    assert h.backend.addresses == [A], "one good check is not a recovery"
    h.ticks(1)
    assert h.backend.addresses == [A, B]
    assert h.backend.sets == [[A], [A, B]]
    assert len(h.events.named("node_up")) == 1


class PoweredOff:
    """A checker on the fake clock for a node that dies at `died_at` (wall clock): a check that
    starts after that waits out the whole timeout (a powered-off host answers nothing), so the
    round takes `timeout` seconds; a check that started before it still succeeds."""

    def __init__(self, h: Harness, node: str, died_at: float, timeout: float):
        self.h, self.node, self.died_at, self.timeout = h, node, died_at, timeout
        self.rounds: list[float] = []

    def __call__(self, targets):
        started = self.h.clock.now()
        self.rounds.append(started)
        dead = started >= self.died_at
        self.h.checker.health[self.node] = not dead
        results = self.h.checker(targets)
        if dead:
            self.h.clock.advance(self.timeout)
        return results


def _kill_during_the_loop(h: Harness, phase: float, timeout: float) -> tuple[float, float]:
    """Run the real loop; kill digitalocean `phase` seconds into a round. Returns the seconds
    from its death to node_down and to the record write."""
    first_round = h.clock.now()
    died_at = first_round + 2 * h.config.interval + phase
    checker = PoweredOff(h, "digitalocean", died_at, timeout)
    h.engine.checker = checker
    moved: list[float] = []
    real_set = h.backend.set

    def set_and_time(addresses, ttl):
        moved.append(h.clock.now())
        real_set(addresses, ttl)

    h.backend.set = set_and_time
    h.engine.run(stopping=lambda: bool(moved) or h.clock.now() > died_at + 120)
    assert h.backend.addresses == [B]
    [down] = h.events.named("node_down")
    return _event_time(down) - died_at, moved[0] - died_at


def _event_time(event) -> float:
    return datetime.datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize("phase", [0.0, 0.01, 1.0, 2.5, 4.0, 4.99])
def test_a_powered_off_node_is_confirmed_down_within_15_seconds_of_dying_with_5s_checks(
    tmp_path, phase
) -> None:
    """The issue's target, from the moment of death at any point of the 5 s round, for a node
    that answers nothing (each check waits out the platform's 2 s timeout): the first failed
    check comes within one interval, then rechecks 1 s apart confirm it. Worst case
    5 + 3 x 2 + 2 x 1 = 13 s; the record is written in the same round."""
    h = Harness(tmp_path, [A, B], site_config(timeout=2))
    detection, moved = _kill_during_the_loop(h, phase, timeout=2)
    assert detection <= 13.0 + 1e-6 and moved <= 13.0 + 1e-6, (detection, moved)
    # It is the rechecks: the three failed checks are 3 s apart (2 s timeout + 1 s), not 5 s.
    failed = [_event_time(e) for e in h.events.named("check_failed")]
    assert [round(b - a, 3) for a, b in itertools.pairwise(failed)] == [3.0, 3.0]


def test_without_rechecks_the_same_death_takes_up_to_17_seconds(tmp_path) -> None:
    """What rechecks buy: with recheckInterval = interval the worst case is 5 + 2 x 5 + 2 s."""
    h = Harness(tmp_path, [A, B], site_config(timeout=2, recheckInterval=5))
    detection, _ = _kill_during_the_loop(h, 0.01, timeout=2)
    assert detection > 15


def test_rechecks_happen_only_while_a_node_is_in_doubt(both_up: Harness) -> None:
    h = both_up
    h.checker.health["linode"] = lambda tick: tick != 4  # one failed check in the 4th round
    h.engine.run(stopping=lambda: h.checker.ticks >= 8)
    # Rounds 1-3 every 5 s; the 4th fails: the 5th comes 1 s later, passes, and the schedule
    # goes on 5 s from there.
    assert h.clock.slept == [5.0, 5.0, 5.0, 1.0, 5.0, 5.0, 5.0]
    assert h.events.named("node_down") == [] and h.backend.sets == []


def test_with_rechecks_a_node_failing_every_other_check_still_never_moves_the_record(
    both_up: Harness,
) -> None:
    h = both_up
    h.checker.health["linode"] = lambda tick: tick % 2 == 0
    h.engine.run(stopping=lambda: h.checker.ticks >= 240)
    assert h.backend.sets == [] and h.events.named("node_down") == []
    assert {e["streak"] for e in h.events.named("check_failed")} == {1}


@pytest.mark.parametrize("pattern", [[False, True], [False, False, True], [True, False]])
def test_a_node_failing_intermittently_never_moves_the_record(both_up: Harness, pattern: list[bool]) -> None:
    # failures=3: fewer than three failures in a row, however often, is not "down".
    h = both_up
    h.checker.health["linode"] = lambda tick: pattern[(tick - 1) % len(pattern)]
    h.ticks(120)  # ten minutes of 5 s checks
    assert h.backend.sets == []
    assert h.notifier.messages == []
    assert h.events.named("node_down") == []


def test_a_down_node_passing_every_other_check_never_comes_back(both_up: Harness) -> None:
    h = both_up
    h.checker.health["linode"] = False
    h.ticks(3)
    assert h.backend.sets == [[A]]
    h.checker.health["linode"] = lambda tick: tick % 2 == 0
    h.ticks(120)
    assert h.backend.sets == [[A]], "recoveries=2 good checks in a row are needed"
    assert len(h.notifier.messages) == 1


def test_the_last_healthy_address_is_never_removed(both_up: Harness) -> None:
    h = both_up
    h.checker.health["digitalocean"] = False
    h.ticks(3)
    assert h.backend.addresses == [B]
    h.checker.health["linode"] = False
    h.ticks(30)
    assert h.backend.addresses == [B], "with every node down the record stays as it is"
    assert h.backend.sets == [[B]]
    alerts = [m for m in h.notifier.messages if m["event"] == "all_nodes_down"]
    assert len(alerts) == 1, "the all-down alert is sent once, not every tick"
    assert alerts[0]["to"] == [B]
    assert len(h.events.named("all_nodes_down")) == 1


def test_when_one_node_is_back_after_all_were_down_the_record_follows_it(both_up: Harness) -> None:
    h = both_up
    h.checker.default = False
    h.checker.health = {}
    h.ticks(3)
    assert h.backend.sets == [] and h.backend.addresses == [A, B]
    h.checker.health["linode"] = True
    h.ticks(2)
    assert h.backend.addresses == [B]
    assert h.events.named("all_nodes_down_over")


def test_the_record_is_written_only_when_the_provider_differs(both_up: Harness) -> None:
    h = both_up
    h.ticks(120)
    assert h.backend.sets == []
    # Read back only every reconcileInterval (60 s): 10 minutes of ticks -> about 10 reads, not 120.
    assert 9 <= h.backend.gets <= 11
    # Someone already moved the record where it has to go: read, no write, no notification.
    h.checker.health["linode"] = False
    h.ticks(2)
    h.backend.addresses = [A]
    h.ticks(1)
    assert h.events.named("node_down")
    assert h.backend.sets == []
    assert h.notifier.messages == []


def test_a_record_edited_by_hand_is_repaired_at_the_next_reconcile(both_up: Harness) -> None:
    h = both_up
    h.ticks(1)
    h.backend.addresses = [A, "203.0.113.99"]
    h.ticks(13)  # 65 s > reconcileInterval
    assert h.backend.addresses == [A, B]
    [differs] = h.events.named("record_differs")
    assert differs["found"] == [A, "203.0.113.99"]
    [moved] = h.events.named("record_moved")
    assert "no configured node" in moved["reason"]


def test_a_fresh_watcher_trusts_the_record_and_makes_new_nodes_prove_themselves(tmp_path) -> None:
    h = Harness(tmp_path, [A])  # linode is healthy but not in the record
    h.ticks(1)
    assert h.backend.sets == [], "starting never moves the record by itself"
    tracked = {e["node"]: e["status"] for e in h.events.named("node_tracked")}
    assert tracked == {"digitalocean": "up", "linode": "down"}
    h.ticks(1)
    assert h.backend.addresses == [A, B]


def test_a_restart_keeps_the_failure_count(both_up: Harness) -> None:
    h = both_up
    h.checker.health["linode"] = False
    h.ticks(2)
    h.restart()
    h.ticks(1)
    assert h.backend.sets == [[A]], "2 failures before the restart + 1 after = down"


def test_a_restart_after_a_move_neither_rewrites_nor_notifies_again(both_up: Harness) -> None:
    h = both_up
    h.checker.health["linode"] = False
    h.ticks(3)
    assert len(h.notifier.messages) == 1
    h.restart()
    h.ticks(20)
    h.restart()
    h.ticks(20)
    assert h.backend.sets == [[A]]
    assert len(h.notifier.messages) == 1


def test_a_dns_failure_is_retried_next_tick_and_alerted_once(both_up: Harness) -> None:
    h = both_up
    h.checker.health["linode"] = False
    h.ticks(2)
    h.backend.fail_next = [DnsError("cloudflare update: HTTP 500: [1000] boom")] * 8
    h.ticks(8)  # the move is due from the 3rd tick: reads and writes fail
    assert h.backend.addresses == [A, B]
    errors = h.events.named("dns_error")
    assert len(errors) == 8 and errors[-1]["consecutive"] == 8
    alerts = [m for m in h.notifier.messages if m["event"] == "dns_failing"]
    assert len(alerts) == 1
    h.ticks(1)
    assert h.backend.addresses == [A]
    assert [m["event"] for m in h.notifier.messages] == ["dns_failing", "record_moved"]


def test_a_rate_limit_pauses_dns_calls_until_retry_after(both_up: Harness) -> None:
    h = both_up
    h.checker.health["linode"] = False
    h.ticks(2)
    gets = h.backend.gets
    h.backend.fail_next = [RateLimitedError("cloudflare list: 429 rate limited", retry_after=20)]
    h.ticks(1)
    assert h.backend.gets == gets + 1
    h.ticks(3)  # 15 s later: still inside Retry-After, no call at all
    assert h.backend.gets == gets + 1 and h.backend.sets == []
    h.ticks(1)  # 20 s: allowed again
    assert h.backend.addresses == [A]
    assert h.events.named("dns_error")[0]["retry_after"] == 20


def test_the_loop_ticks_every_interval_without_sleeping_for_real(both_up: Harness) -> None:
    h = both_up
    h.engine.run(stopping=lambda: h.checker.ticks >= 10)
    assert h.checker.ticks == 10
    assert h.clock.slept == [5.0] * 9


def test_a_slow_tick_starts_the_next_one_at_once_and_says_so(both_up: Harness) -> None:
    h = both_up
    slow = h.checker

    def checker(targets):  # this round of checks takes 7 s of a 5 s interval
        h.clock.advance(7 if slow.ticks == 0 else 0)
        return slow(targets)

    h.engine.checker = checker
    h.engine.run(stopping=lambda: slow.ticks >= 3)
    assert h.clock.slept[0] == 0
    assert h.events.named("tick_overrun")[0]["late_seconds"] == 2.0


def test_steady_state_does_not_rewrite_the_state_file(both_up: Harness) -> None:
    h = both_up
    h.ticks(1)
    path = StateStore(h.state_dir).path
    before = os.stat(path).st_mtime_ns
    saved = path.read_text()
    h.ticks(30)
    assert path.read_text() == saved and os.stat(path).st_mtime_ns == before


def test_an_unreadable_state_file_is_set_aside_and_the_record_trusted(tmp_path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.json").write_text("{not json")
    h = Harness(tmp_path, [A, B])
    assert h.events.named("state_reset")
    assert (tmp_path / "state" / "state.bad").read_text() == "{not json"
    h.ticks(5)
    assert h.backend.sets == []


def test_the_state_file_is_replaced_atomically(both_up: Harness, monkeypatch) -> None:
    h = both_up
    h.ticks(1)
    store = StateStore(h.state_dir)
    good = store.path.read_text()
    h.checker.health["linode"] = False

    def crash(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError):
        h.ticks(1)
    assert store.path.read_text() == good, "a failed save leaves the previous file whole"
    assert sorted(p.name for p in h.state_dir.iterdir()) == ["state.json"], "no temp file left behind"
    assert json.loads(good)["version"] == 1


def test_a_node_with_a_new_address_is_judged_afresh(tmp_path) -> None:
    h = Harness(tmp_path, [A, B])
    h.ticks(1)
    replaced = site_config()
    data = replaced.model_dump(by_alias=True)
    data["sites"][0]["nodes"][1]["address"] = "198.51.100.21"
    h.config = parse_config(data)
    h.restart()
    h.ticks(1)
    tracked = [e for e in h.events.named("node_tracked") if e["address"] == "198.51.100.21"]
    assert tracked[0]["status"] == "down", "the new address is not in the record yet"
    h.ticks(1)
    assert h.backend.addresses == [A, "198.51.100.21"]


def test_an_unexpected_backend_exception_is_handled_like_a_dns_error(both_up: Harness) -> None:
    h = both_up
    h.checker.health["linode"] = False
    h.ticks(2)
    h.backend.fail_next = [KeyError("result")]  # e.g. an SDK meeting an answer it cannot parse
    h.ticks(1)
    assert h.events.named("dns_error")[0]["error"] == "KeyError: 'result'"
    h.ticks(1)
    assert h.backend.addresses == [A]


def test_one_broken_site_does_not_stop_the_others(tmp_path) -> None:
    data = site_config().model_dump(by_alias=True)
    other = copy.deepcopy(data["sites"][0])
    other.update(site="globex", record="globex.ops.example.net")
    data["sites"].append(other)
    h = Harness(tmp_path, [A, B], config=parse_config(data))
    globex = MemoryBackend([A, B])
    h.engine.backends = {"acme": h.backend, "globex": globex}
    h.engine.checker = lambda targets: {
        k: v for k, v in h.checker(targets).items() if k[0] != "acme"
    }  # acme's results lost
    h.checker.health["linode"] = False
    h.ticks(3)
    assert h.events.named("site_error")[0]["site"] == "acme"
    assert globex.addresses == [A], "globex still moved"


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"version": 1, "sites": []}',
        '{"version": 1, "sites": {"acme": []}}',
        '{"version": 1, "sites": {"acme": {"nodes": {"digitalocean": {"address": "203.0.113.10", "status": "sideways"}}}}}',
        '{"version": 1, "sites": {"acme": {"nodes": {"digitalocean": {"address": "203.0.113.10", "status": "up", "fail_streak": "3"}}}}}',
        '{"version": 1, "sites": {"acme": {"published": "203.0.113.10"}}}',
        '{"version": 1, "sites": {"acme": {"surprise": 1}}}',
        '{"version": 1, "sites": {"acme": {"nodes": {"digitalocean": {"status": "up"}}}}}',
    ],
)
def test_a_state_file_of_the_wrong_shape_is_set_aside_not_a_crash_loop(tmp_path, text: str) -> None:
    """Issue 15: valid JSON of the wrong shape used to raise outside the set-aside path (or later,
    in the engine), so every restart crashed on the same file."""
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.json").write_text(text)
    h = Harness(tmp_path, [A, B])
    assert h.events.named("state_reset")
    assert (tmp_path / "state" / "state.bad").read_text() == text
    h.ticks(5)
    assert h.backend.sets == []
