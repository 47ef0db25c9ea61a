"""Two instances with the same kafka.transactional_id.

The second one's init_transactions fences the first: the fenced one stops
publishing, says so in its log and on /readyz (503, "fenced"), turns
announces away with retry-later once its bound is full, and loses nothing it
acknowledged: at SIGTERM its undelivered deltas go to its snapshot, and a
restart of that instance (once the other is gone) delivers them. Exact
per-user totals over both instances' users prove it.

Tansu quirk (scripts/BROKER-NOTES.md, "ProducerFenced retried"): once in a
while it answers the fenced producer's requests with ProducerFenced in a
form librdkafka retries instead of raising the fatal fencing error, so
privtrak cannot learn it is fenced (Kafka tells it at once). Detected: no
`Kafka producer fenced` within FENCED_WITHIN_S while the second instance is
up and ready. The first's commit then hangs until its 60 s timeout, and
privtrak replaces its producer (init_transactions), which fences the second
in turn: restarting the second at once only repeats the race (seen once in
ten fresh-clone runs). Recovered (once, logged as BROKER-QUIRK
fenced-retried): the second instance is stopped; the harness waits for the
first's own producer replacement (its log, bounded); then it pauses the load
and waits until the first has published everything it holds (no transaction
open), starts the second, and resumes the load. The first's next transaction
then meets the fence at its start, where Tansu answers as Kafka does. So the
test still fails whenever privtrak does not stop, report and keep its deltas
once it is told it is fenced.
"""

from __future__ import annotations

import re

from harness import (Ledger, LoadDriver, compare, establish, make_entries, quirk, read_topic_recovering, report,
                     settle)
from support.common import DeadlineExceeded, wait_until

BROKER_PORT = 19496
FENCED_WITHIN_S = 30       # Kafka: at once; Tansu: seconds when it answers as Kafka does
FENCE_ATTEMPTS = 2        # under load, then once between transactions (the recovery)
PRODUCER_RESET_S = 60      # privtrak's producerResetTimeoutMilliseconds (not a YAML key)


class PausableLoad:
    """The first instance's load, which the fencing recovery pauses and resumes."""

    def __init__(self, make):
        self.make = make
        self.rounds = 0
        self.driver = make(self.rounds).start()

    def pause(self) -> None:
        self.driver.stop()

    def resume(self) -> None:
        self.rounds += 1
        self.driver = self.make(self.rounds).start()

    def stop(self) -> None:
        self.driver.stop()


def test_same_transactional_id_fences_the_first_and_loses_nothing(procs, tmp_path):
    broker = procs.broker(BROKER_PORT)
    topic = "faults-fencing"
    broker.create_topic(topic)
    shared_id = f"faults-fencing-{tmp_path.name}"
    small = {"max_pending_deltas": 200, "max_pending_bytes": 128 << 10, "max_wait_s": 0.5,
             "shutdown_drain_timeout_s": 3}
    first = procs.tracker(bootstrap=broker.bootstrap, topic=topic, name="first", accounting=small,
                          kafka={"transactional_id": shared_id})
    second = procs.tracker(bootstrap=broker.bootstrap, topic=topic, name="second", accounting=small,
                           kafka={"transactional_id": shared_id})
    first.start()
    assert first.admin_port and second.admin_port
    first_entries = make_entries(users=6, torrents=3, clients_per_user=2, seed=51)
    second_entries = make_entries(users=6, torrents=3, clients_per_user=2, seed=52)
    ledger = Ledger()
    establish(first, first_entries, ledger)
    wait_until(lambda: first.admin_get("/readyz")[0] == 200, 10, "first instance ready")

    load = PausableLoad(lambda n: LoadDriver(first, first_entries, ledger, workers=4, seed=53 + 100 * n))
    try:
        load.driver.wait_accepted(200, timeout=60)
        fence_attempts = fence(first, second, load)
        # Announces keep coming; the fenced instance fills its bound and turns them away.
        wait_until(lambda: ledger.retry_later_latencies, 60, "retry-later from the fenced instance",
                   on_timeout=first.describe)
    finally:
        load.stop()
    readyz = first.admin_get("/readyz")
    assert readyz[0] == 503 and "fenced" in readyz[1], readyz

    # The second instance publishes normally.
    establish(second, second_entries, ledger)
    load2 = LoadDriver(second, second_entries, ledger, workers=3, seed=54).start()
    try:
        load2.wait_accepted(150, timeout=60)
    finally:
        load2.stop()
    settle(second, second_entries, ledger)

    rc_first = first.terminate(timeout=30)
    assert rc_first == 0, f"fenced instance exit code {rc_first}\n{first.describe()}"
    written = first.wait_log("accounting snapshot written", timeout=1)
    to_snapshot = int(re.search(r"pending_deltas=(\d+)", written).group(1))
    assert to_snapshot > 0, f"the fenced instance had undelivered deltas, yet its snapshot has none: {written}"
    assert "undelivered deltas" in first.log(), first.describe()
    rc_second = second.terminate(timeout=30)
    assert rc_second == 0, second.describe()

    # The fenced instance comes back (the other is gone) and delivers its snapshot.
    first.start()
    restored = first.wait_log("restored accounting snapshot", timeout=10)
    assert f"pending_deltas={to_snapshot}" in restored, restored
    settle(first, first_entries, ledger)
    rc = first.terminate(timeout=30)
    assert rc == 0, first.describe()

    contents = read_topic_recovering(broker, topic, [shared_id])
    truth = ledger.truth()
    diff = compare(truth, contents.totals())
    report("same-transactional-id", fenced_log="Kafka producer fenced", fence_attempts=fence_attempts,
           to_snapshot=to_snapshot, readyz=readyz[0], accepted=ledger.accepted_count(),
           records=contents.records, unique_deltas=len(contents.unique()), raw_duplicates=contents.duplicates,
           users_wrong=len(diff))
    assert diff == {}, f"per-user totals differ from the ledger: {diff}"


def fence(first, second, load: PausableLoad) -> int:
    """Starts the second instance (its init_transactions fences the first)
    until the first logs that it is fenced; returns the attempts it took."""
    for attempt in range(1, FENCE_ATTEMPTS + 1):
        replaced_before = first.log().count("Kafka producer replaced")
        if attempt > 1:
            # Fence the first between transactions: load paused, all it holds published.
            load.pause()
            wait_until(lambda: pending_deltas(first) == 0, 60, "the first instance to publish what it holds",
                       interval=0.1, on_timeout=first.describe)
        second.start()
        if attempt > 1:
            load.resume()
        try:
            first.wait_log("Kafka producer fenced", timeout=FENCED_WITHIN_S)
            return attempt
        except DeadlineExceeded as exc:
            missed = exc
        if "Kafka producer fenced" in first.log():
            return attempt  # late, but said
        second_ready = second.admin_get("/readyz")
        first_ready = first.admin_get("/readyz")
        if attempt == FENCE_ATTEMPTS or second_ready[0] != 200:
            raise AssertionError(f"the first instance never said it was fenced ({attempt} attempts; second "
                                 f"instance /readyz {second_ready}, first {first_ready})\n{missed}")
        quirk("fenced-retried", f"no 'Kafka producer fenced' from the first instance {FENCED_WITHIN_S}s after the "
                                f"second (same transactional.id) became ready (second /readyz {second_ready[0]}, "
                                f"first /readyz {first_ready[0]} {first_ready[1].strip()[:80]!r}): Tansu's "
                                f"ProducerFenced retried by librdkafka; recovery: second stopped, the first's "
                                f"producer replaced, second started again between the first's transactions")
        rc = second.terminate(timeout=30)
        assert rc == 0, f"second instance exit code {rc}\n{second.describe()}"
        # The first's hung commit times out and privtrak replaces its producer.
        wait_until(lambda: first.log().count("Kafka producer replaced") > replaced_before
                   or "Kafka producer fenced" in first.log(),
                   PRODUCER_RESET_S + 60, "the first instance to replace its producer", interval=0.5,
                   on_timeout=first.describe)
        if "Kafka producer fenced" in first.log():
            return attempt
    raise AssertionError("unreachable")


def pending_deltas(tracker) -> float:
    """Deltas the tracker holds unpublished (its /metrics): used only to
    time the fence, never to judge privtrak (the ledger and the topic do)."""
    status, body = tracker.admin_get("/metrics")
    assert status == 200, status
    for line in body.splitlines():
        if line.startswith("privtrak_accounting_pending_deltas "):
            return float(line.split()[1])
    raise AssertionError("privtrak_accounting_pending_deltas not in /metrics")
