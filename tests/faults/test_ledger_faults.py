"""The ledger (`privtrak ledger`: delta topic -> PostgreSQL) under faults.

The deltas are real: a privtrak tracker with accounting publishes them to a
Tansu topic (per-delta framing, keyed by user, several partitions) while
Python drives it with thousands of HTTP and UDP announces for a dozen users
(known passkeys). That topic is produced ONCE for the module and then only
read: each test applies it into a fresh PostgreSQL database of a private
cluster (scripts/postgres, port 19536) with `ledger.max_batch_records: 50`,
so the ledger needs many transactions, and injects its fault:

1. the ledger is SIGKILLed once it has applied some but not all of the
   topic (stored offsets above 0 and below the end), then restarted;
2. PostgreSQL is stopped (`scripts/postgres stop`, a fast shutdown) and
   started while the ledger applies; the ledger must notice (a retry
   counted in /metrics) within NOTICE_S, never exit, converge once
   PostgreSQL is back, and still exit 0 on SIGTERM after. If it does not
   notice, PostgreSQL is started anyway and the failure says whether it
   converged later, its sockets to PostgreSQL and its metrics;
3. the broker is frozen (SIGSTOP, harness.Broker.pause) for FREEZE_S while
   the ledger applies (about a third stored), then continued (SIGCONT, in a
   finally: the module's broker serves every scenario). This ledger's
   consumer prefetches little (SMALL_PREFETCH), else it would hold the whole
   topic before the freeze and not feel it. During the freeze it must stay
   up and no partition's stored offset may move backwards; after it, it
   must converge within 120 s;
4. two ledgers share the database with static assignments
   (`ledger.partitions` [0, 1] and [2, 3]); once both stored offsets the
   second is SIGKILLed. The first must finish its partitions (stored
   offsets = high watermarks) while the killed one's stop short (at most
   the transaction it had in flight may still commit after the kill);
   then a replacement for [2, 3] starts together with a misconfigured
   ledger claiming [0, 1, 2, 3], both applying 2 and 3 from the same stored
   offsets until each committed a few transactions; the overlap is then
   stopped (SIGTERM, exit 0) and the totals must still be exact: the offset
   check under the partition row lock skips what the other committed (the
   skipped counts are in the figures).

5. two ledgers join one consumer group (`ledger.group`, a 6 s session so
   that Tansu's JoinGroup, held for half the session, takes 3 s) on a topic
   of their own (broker port GROUP_BROKER_PORT, PostgreSQL GROUP_PG_PORT:
   fixed ports of their own, apart from the other scenarios'); once both
   hold partitions and the second stored offsets, it is SIGKILLed mid-run.
   The group notices after the session timeout and the survivor is
   assigned every partition, starting at the offsets the killed one stored
   (its skipped count stays 0: nothing it reads was applied before), and
   finishes the topic. The join, the kill-to-takeover and the kill-to-exact
   times are in the figures.

"Done" is exact: user_totals equals the truth AND the stored next offsets
reach each partition's high watermark (past the last delta there are the
tracker's commit markers and the harness reader's sentinel records, which
the ledger stores in rejected_records); user_torrents.announces then sums
to the number of distinct deltas (nothing applied twice).

Either way `privtrak.user_totals` must end EXACTLY equal to the ground
truth: the topic read back independently (read_committed, deduplicated by
origin (instance, sequence)), which must itself equal the bytes of the
accepted announces (harness.Ledger). Every wait polls a real condition
under a deadline; a FAULT-FIGURES line per test gives the figures.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest

from harness import (HOST, Broker, Ledger, LoadDriver, Tracker, compare, establish, free_port, make_entries,
                     read_topic_recovering, report, settle)
from support.common import REPO, DeadlineExceeded, runtime_env, stop_process_group, tail, wait_until

PG_PORT = 19536
PG_SCRIPT = REPO / "scripts" / "postgres"
TOPIC = "faults-ledger"
PARTITIONS = 4
MAX_BATCH_RECORDS = 50
TARGET_DELTAS = 6000
NOTICE_S = 15.0  # a ledger whose PostgreSQL went away must notice (retry) within this


def pg(cmd: str, port: int = PG_PORT) -> None:
    out = subprocess.run([str(PG_SCRIPT), cmd, str(port)], capture_output=True, timeout=90)
    assert out.returncode == 0, f"scripts/postgres {cmd} {port}: {out.stderr.decode(errors='replace')}"


def pg_connect(db: str, port: int = PG_PORT):
    import psycopg
    return psycopg.connect(f"host={HOST} port={port} user=postgres dbname={db} connect_timeout=2",
                           autocommit=True)


class Db:
    """Read-only view of one ledger database; reconnects after an outage."""

    def __init__(self, name: str, port: int = PG_PORT):
        self.name, self.port = name, port
        self.conn = None

    def query(self, sql: str):
        try:
            if self.conn is None or self.conn.closed:
                self.conn = pg_connect(self.name, self.port)
            with self.conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall()
        except Exception:
            self.close()
            raise

    def offsets(self, topic: str = TOPIC) -> Dict[int, int]:
        """The stored next offset of each partition ({} before the schema exists)."""
        exists = self.query("SELECT to_regclass('privtrak.partition_offsets') IS NOT NULL")[0][0]
        if not exists:
            return {}
        return {int(p): int(o) for p, o in self.query(
            f"SELECT partition, next_offset FROM privtrak.partition_offsets WHERE topic = '{topic}'")}

    def offsets_sum(self, topic: str = TOPIC) -> int:
        """Sum of the stored next offsets (0 before the schema exists)."""
        exists = self.query("SELECT to_regclass('privtrak.partition_offsets') IS NOT NULL")[0][0]
        if not exists:
            return 0
        return int(self.query("SELECT coalesce(sum(next_offset), 0) FROM privtrak.partition_offsets "
                              f"WHERE topic = '{topic}'")[0][0])

    def totals(self) -> Dict[str, Tuple[int, int]]:
        exists = self.query("SELECT to_regclass('privtrak.user_totals') IS NOT NULL")[0][0]
        if not exists:
            return {}
        return {bytes(u).hex(): (int(up), int(down))
                for u, up, down in self.query("SELECT user_id, uploaded, downloaded FROM privtrak.user_totals")}

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - the server may be gone
                pass
        self.conn = None


class LedgerProcess:
    """`privtrak ledger` with its own config file and admin port; restartable.
    `partitions`: a static assignment (ledger.partitions), else every partition;
    `group`: a consumer group instead (ledger.group);
    `kafka_properties`: librdkafka properties for its consumer (kafka.properties)."""

    def __init__(self, binary: str, workdir: Path, bootstrap: str, db: str, name: str = "",
                 partitions: Optional[List[int]] = None, kafka_properties: Optional[Dict[str, str]] = None,
                 group: Optional[str] = None, topic: str = TOPIC, pg_port: int = PG_PORT):
        self.binary, self.workdir = binary, workdir
        self.bootstrap, self.db = bootstrap, db
        self.topic, self.pg_port = topic, pg_port
        self.name = name or db
        self.partitions = partitions
        self.config_path = workdir / f"ledger-{self.name}.yaml"
        config = f"ledger:\n  max_batch_records: {MAX_BATCH_RECORDS}\n"
        if partitions is not None:
            config += f"  partitions: [{', '.join(str(p) for p in partitions)}]\n"
        if group is not None:
            config += f"  group: {group}\n"
        if kafka_properties:
            config += "kafka:\n  properties:\n" + "".join(f'    {k}: "{v}"\n' for k, v in kafka_properties.items())
        self.config_path.write_text(config)
        self.log_path = workdir / f"ledger-{self.name}.log"
        self.admin_port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0
        self.transactions_before = 0  # committed by earlier (killed) processes, as their metrics last showed
        self.retries_before = 0
        self.last_metrics: Dict[str, float] = {}

    def start(self) -> "LedgerProcess":
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"=== ledger start {self.starts}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [self.binary, "ledger", "--config", str(self.config_path),
                 "--from", f"kafka://{self.bootstrap}/{self.topic}",
                 "--to", f"postgresql://postgres@{HOST}:{self.pg_port}/{self.db}",
                 "--admin", f"{HOST}:{self.admin_port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=runtime_env(),
                cwd=str(self.workdir), start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def metrics_text(self) -> Optional[str]:
        """This process's /metrics (None if unreachable)."""
        try:
            c = http.client.HTTPConnection(HOST, self.admin_port, timeout=2)
            try:
                c.request("GET", "/metrics")
                return c.getresponse().read().decode(errors="replace")
            finally:
                c.close()
        except OSError:
            return None

    def metrics(self) -> Dict[str, float]:
        """privtrak_ledger_* series of this process without labels (empty if
        unreachable; labelled series: see partition_lag)."""
        body = self.metrics_text()
        if body is None:
            return self.last_metrics
        out = {}
        for line in body.splitlines():
            if line.startswith("privtrak_ledger_") and "{" not in line:
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        self.last_metrics = out
        return out

    def partition_lag(self, unit: str = "records") -> Dict[int, float]:
        """privtrak_ledger_partition_lag_<unit>{partition="N"}: the partitions
        this ledger reads now, with their lag ({} if unreachable)."""
        body = self.metrics_text() or ""
        prefix = f'privtrak_ledger_partition_lag_{unit}{{partition="'
        out = {}
        for line in body.splitlines():
            if line.startswith(prefix):
                label, _, value = line.rpartition(" ")
                out[int(label[len(prefix):].split('"')[0])] = float(value)
        return out

    def transactions(self) -> int:
        return self.transactions_before + int(self.metrics().get("privtrak_ledger_transactions_total", 0))

    def retries(self) -> int:
        return self.retries_before + int(self.metrics().get("privtrak_ledger_retries_total", 0))

    def counter(self, name: str) -> int:
        """A privtrak_ledger_* counter of the current process (last seen if unreachable)."""
        return int(self.metrics().get(f"privtrak_ledger_{name}_total", 0))

    def kill(self) -> int:
        m = self.metrics()
        self.proc.send_signal(signal.SIGKILL)
        rc = self.proc.wait(timeout=10)
        self.transactions_before += int(m.get("privtrak_ledger_transactions_total", 0))
        self.retries_before += int(m.get("privtrak_ledger_retries_total", 0))
        self.last_metrics = {}
        return rc

    def terminate(self, timeout: float) -> Optional[int]:
        self.metrics()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        stop_process_group(self.proc)

    def log(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace")

    def describe(self) -> str:
        rc = None if self.proc is None else self.proc.poll()
        return f"--- ledger {self.name} rc={rc}\n{tail(self.log_path, 30)}"


class Topic:
    """A delta topic and its ground truth."""

    def __init__(self, broker: Broker, truth: Dict[str, Tuple[int, int]], deltas: int, records: int,
                 end: int, ends: Dict[int, int], accepted: int, name: str = TOPIC):
        self.broker, self.bootstrap, self.name = broker, broker.bootstrap, name
        self.truth, self.deltas, self.records = truth, deltas, records
        self.end, self.ends, self.accepted = end, ends, accepted


@pytest.fixture(scope="module")
def postgres():
    pg("start")
    try:
        yield
    finally:
        pg("stop")


@pytest.fixture(scope="module")
def topic(privtrak_bin: str, tmp_path_factory, postgres) -> Topic:
    """One broker, one topic of several thousand real deltas, the tracker stopped (exit 0)."""
    with produce_topic(privtrak_bin, tmp_path_factory.mktemp("ledger-topic"), free_port(), TOPIC) as t:
        yield t


@contextlib.contextmanager
def produce_topic(privtrak_bin: str, workdir: Path, broker_port: int, name: str) -> Iterator[Topic]:
    """A broker on `broker_port` with topic `name` of several thousand real
    deltas (a tracker driven by real announces, then stopped, exit 0); the
    broker stops on exit."""
    broker = Broker(broker_port, workdir)
    tracker: Optional[Tracker] = None
    try:
        broker.start()
        broker.create_topic(name, partitions=PARTITIONS)
        tracker = Tracker(privtrak_bin, workdir, bootstrap=broker.bootstrap, topic=name, name="ledger-src",
                          accounting={"batch_size": 100, "max_pending_deltas": 20000})
        tracker.start()
        entries = make_entries(users=12, torrents=5, clients_per_user=2, seed=77)
        ledger = Ledger()
        establish(tracker, entries, ledger)
        load = LoadDriver(tracker, entries, ledger, workers=6, max_announces=TARGET_DELTAS, seed=77).start()
        try:
            wait_until(lambda: load.sent >= TARGET_DELTAS and not any(t.is_alive() for t in load.threads), 180,
                       f"{TARGET_DELTAS} announces ({ledger.summary()})", interval=0.1,
                       on_timeout=tracker.describe)
        finally:
            load.stop()
        settle(tracker, entries, ledger)
        rc = tracker.terminate(timeout=30)
        assert rc == 0, f"tracker exit code {rc} after SIGTERM\n{tracker.describe()}"
        contents = read_topic_recovering(broker, name, [tracker.transactional_id])
        truth = contents.totals()
        diff = compare(ledger.truth(), truth)
        assert diff == {}, f"the topic does not hold the accepted announces' bytes (tracker, not ledger): {diff}"
        used = {p for (p, _) in contents.where}
        assert len(used) >= 2, f"deltas on partitions {sorted(used)} only: want several"
        # Where the ledger must end: each partition's high watermark, now that
        # nothing writes any more (past the last delta: the tracker's commit
        # markers and the reader's sentinel records, which the ledger stores
        # as rejected records).
        ends = high_watermarks(broker.bootstrap, name)
        last_delta = max(off for (_, off) in contents.where)
        assert sum(ends.values()) > last_delta, (ends, last_delta)
        t = Topic(broker, truth, len(contents.unique()), contents.records, sum(ends.values()), ends,
                  ledger.accepted_count(), name=name)
        print(f"\nledger topic {name}: {t.deltas} deltas in {t.records} records, partition ends {ends}, "
              f"{len(truth)} users, {t.accepted} accepted announces", flush=True)
        assert t.deltas >= 3000, f"only {t.deltas} deltas"
        yield t
    finally:
        if tracker is not None:
            tracker.stop()
        broker.stop()


def high_watermarks(bootstrap: str, topic: str) -> Dict[int, int]:
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"faults-ledger-hw-{os.getpid()}",
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        md = c.list_topics(topic, timeout=10)
        from confluent_kafka import TopicPartition
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in sorted(md.topics[topic].partitions)}
    finally:
        c.close()


def pg_sockets(led: "LedgerProcess") -> str:
    """The ledger's TCP connections to PostgreSQL (ss), for a failure message."""
    out = subprocess.run(["ss", "-tnp"], capture_output=True, text=True)
    mine = [line.split()[3:5] for line in out.stdout.splitlines()
            if f"pid={led.proc.pid}," in line and line.split()[4].endswith(f":{PG_PORT}")]
    return f"ledger sockets to PostgreSQL: {mine or 'none'}"


def fresh_db(name: str, port: int = PG_PORT) -> Db:
    admin = pg_connect("privtrak", port)
    try:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    finally:
        admin.close()
    return Db(name, port)


def wait_mid_run(db: Db, led: LedgerProcess, topic: Topic, timeout: float = 60.0) -> int:
    """Polls the stored offsets until about a third of the topic, but not
    all of it, is applied; that sum."""
    deadline = time.monotonic() + timeout
    while True:
        if not led.alive():
            raise AssertionError(f"the ledger exited\n{led.describe()}")
        try:
            applied = db.offsets_sum()
        except Exception:  # noqa: BLE001 - schema being created / not yet reachable
            applied = 0
        if topic.end // 3 <= applied < topic.end:
            return applied
        if applied >= topic.end:
            raise AssertionError(f"the ledger applied the whole topic ({applied} offsets) before the fault "
                                 f"could be injected: more deltas needed")
        if time.monotonic() > deadline:
            raise AssertionError(f"no offsets stored within {timeout}s\n{led.describe()}")
        time.sleep(0.005)


def wait_exact(db: Db, led: LedgerProcess, topic: Topic, timeout: float = 120.0) -> None:
    """Until user_totals equals the truth and the stored offsets reached the topic's end."""
    def done():
        if not led.alive():
            raise AssertionError(f"the ledger exited\n{led.describe()}")
        return db.totals() == topic.truth and db.offsets_sum(topic.name) >= topic.end

    def why() -> str:
        try:
            got, offsets = db.totals(), db.offsets_sum(topic.name)
        except Exception as exc:  # noqa: BLE001
            return f"database unreadable: {exc!r}\n{led.describe()}"
        return (f"offsets {offsets}/{topic.end}; differences {compare(topic.truth, got)}\n{led.describe()}")

    wait_until(done, timeout, "privtrak.user_totals to equal the ground truth", interval=0.1, on_timeout=why)


def final_checks(db: Db, led: LedgerProcess, topic: Topic) -> Dict[str, int]:
    got = db.totals()
    assert compare(topic.truth, got) == {}, compare(topic.truth, got)
    offsets = dict(db.query(f"SELECT partition, next_offset FROM privtrak.partition_offsets "
                            f"WHERE topic = '{topic.name}'"))
    assert offsets == topic.ends, f"stored offsets {offsets} != partition ends {topic.ends}"
    applied = int(db.query("SELECT coalesce(sum(announces), 0) FROM privtrak.user_torrents")[0][0])
    assert applied == topic.deltas, f"{applied} deltas counted in user_torrents.announces, topic has {topic.deltas}"
    rejected = int(db.query("SELECT count(*) FROM privtrak.rejected_records")[0][0])
    return {"announces": applied, "rejected": rejected}


def test_ledger_sigkill_mid_run_then_restart(privtrak_bin, topic, tmp_path):
    db = fresh_db(f"ledger_faults_kill_{os.getpid()}")
    led = LedgerProcess(privtrak_bin, tmp_path, topic.bootstrap, db.name)
    try:
        started = time.monotonic()
        led.start()
        at_kill = wait_mid_run(db, led, topic)
        rc = led.kill()
        assert rc == -signal.SIGKILL, rc
        stored_after_kill = db.offsets_sum()
        assert 0 < stored_after_kill < topic.end, (stored_after_kill, topic.end)
        partial = db.totals()
        assert partial != topic.truth, "the killed ledger had already applied everything"
        restarted = time.monotonic()
        led.start()
        wait_exact(db, led, topic)
        recovery = time.monotonic() - restarted
        figures = final_checks(db, led, topic)
        transactions = led.transactions()
        rc = led.terminate(timeout=30)
        assert rc == 0, f"ledger exit code {rc} after SIGTERM\n{led.describe()}"
        report("ledger-sigkill", deltas=topic.deltas, records=topic.records, partitions=len(topic.ends),
               max_batch_records=MAX_BATCH_RECORDS, offsets_at_kill=f"{stored_after_kill}/{topic.end}",
               transactions_after_restart=transactions - led.transactions_before,
               transactions_before_kill_seen=led.transactions_before, users=len(topic.truth),
               restart_to_exact_s=f"{recovery:.2f}", total_s=f"{time.monotonic() - started:.2f}",
               announces_applied=figures["announces"],
               rejected_records=figures["rejected"], polled_mid_run_at=at_kill)
    finally:
        led.stop()
        db.close()


def test_postgres_restart_under_load(privtrak_bin, topic, tmp_path):
    db = fresh_db(f"ledger_faults_pgrestart_{os.getpid()}")
    led = LedgerProcess(privtrak_bin, tmp_path, topic.bootstrap, db.name)
    try:
        started = time.monotonic()
        led.start()
        at_stop = wait_mid_run(db, led, topic)
        db.close()
        stopping = time.monotonic()
        pg("stop")
        stopped = time.monotonic()
        assert led.alive(), f"the ledger exited when PostgreSQL stopped\n{led.describe()}"
        # The outage lasts until the ledger has seen it (a retry counted:
        # the fault hit it mid-run), at most NOTICE_S; then PostgreSQL comes
        # back whatever happened, and the ledger must still converge.
        try:
            wait_until(lambda: led.retries() > 0 or not led.alive(), NOTICE_S,
                       "the ledger to notice PostgreSQL is down (a retry counted)", interval=0.05)
            noticed = True
        except DeadlineExceeded:
            noticed = False
            stuck = f"{pg_sockets(led)}; metrics {led.metrics()}"
        assert led.alive(), f"the ledger exited while PostgreSQL was down\n{led.describe()}"
        retries_down = led.retries()
        pg("start")
        up = time.monotonic()
        outage = up - stopping
        if not noticed:
            # Whether it ever recovers with PostgreSQL back is the finding's second half.
            try:
                wait_exact(db, led, topic, timeout=60)
                after = "then converged once PostgreSQL was back"
            except DeadlineExceeded as exc:
                after = f"and did not converge within 60 s of PostgreSQL being back: {exc}"
            rc = led.terminate(timeout=15)
            report("ledger-postgres-restart", deltas=topic.deltas, offsets_at_stop=f"{at_stop}/{topic.end}",
                   noticed=False, retries=led.retries(), outage_s=f"{outage:.2f}",
                   offsets_at_end=f"{db.offsets_sum()}/{topic.end}", sigterm_exit_code=rc)
            raise AssertionError(
                f"the ledger did not notice PostgreSQL stopping within {NOTICE_S:.0f} s (offsets {at_stop}/"
                f"{topic.end} at the stop): no retry counted, no error logged, no progress; while down: "
                f"{stuck}; {after}; exit code after SIGTERM: {rc}")
        wait_exact(db, led, topic)
        recovery = time.monotonic() - up
        figures = final_checks(db, led, topic)
        assert led.alive(), led.describe()
        retries = led.retries()
        transactions = led.transactions()
        assert "retrying in" in led.log(), f"no retry logged\n{led.describe()}"
        rc = led.terminate(timeout=30)
        assert rc == 0, f"ledger exit code {rc} after SIGTERM\n{led.describe()}"
        report("ledger-postgres-restart", deltas=topic.deltas, records=topic.records, partitions=len(topic.ends),
               max_batch_records=MAX_BATCH_RECORDS, offsets_at_stop=f"{at_stop}/{topic.end}",
               transactions=transactions, retries=retries, retries_while_down=retries_down,
               pg_stop_s=f"{stopped - stopping:.2f}", outage_s=f"{outage:.2f}",
               pg_up_to_exact_s=f"{recovery:.2f}", total_s=f"{time.monotonic() - started:.2f}",
               users=len(topic.truth), announces_applied=figures["announces"],
               rejected_records=figures["rejected"], exit_code=rc)
    finally:
        led.stop()
        db.close()
        pg("start")  # whatever happened, the module's cluster is left running for the next test


FREEZE_S = 30.0  # how long the broker stays frozen (SIGSTOP) in the freeze scenario
# The freeze scenario's consumer prefetches little (about a producer batch per
# partition), so the frozen broker really stalls it: with librdkafka's
# defaults it would hold the whole (small) topic in memory long before a third
# of it is stored, and the freeze would not be felt.
SMALL_PREFETCH = {"queued.min.messages": "1", "queued.max.messages.kbytes": "4",
                  "max.partition.fetch.bytes": "4096", "fetch.max.bytes": "16384", "message.max.bytes": "16384"}


def poll(condition: Callable[[], bool], timeout: float, what: str, ledgers: List[LedgerProcess],
         on_timeout: Callable[[], str] = lambda: "") -> None:
    """Polls `condition` (the database may be briefly unreadable) until true
    or `timeout`; fails at once if one of `ledgers` exits."""
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while True:
        for led in ledgers:
            if not led.alive():
                raise AssertionError(f"ledger {led.name} exited while waiting for {what}\n{led.describe()}")
        try:
            if condition():
                return
            last = None
        except Exception as exc:  # noqa: BLE001 - reported on timeout
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}"
                                 f"{f'; last error {last!r}' if last else ''}\n{on_timeout()}\n"
                                 + "\n".join(led.describe() for led in ledgers))
        time.sleep(0.02)


def test_broker_frozen_30s_while_applying(privtrak_bin, topic, tmp_path):
    db = fresh_db(f"ledger_faults_freeze_{os.getpid()}")
    led = LedgerProcess(privtrak_bin, tmp_path, topic.bootstrap, db.name, kafka_properties=SMALL_PREFETCH)
    broker = topic.broker
    try:
        started = time.monotonic()
        led.start()
        at_freeze = wait_mid_run(db, led, topic)
        seen = db.offsets()
        retries_before = led.retries()
        frozen_at = time.monotonic()
        broker.pause()
        try:
            # The fault lasts FREEZE_S; meanwhile the ledger must stay up and
            # every partition's stored offset may only grow (whatever it had
            # fetched before the freeze may still be applied).
            polls = 0
            while time.monotonic() - frozen_at < FREEZE_S:
                assert led.alive(), f"the ledger exited while the broker was frozen\n{led.describe()}"
                now = db.offsets()
                back = {p: (seen.get(p), off) for p, off in now.items() if off < seen.get(p, 0)}
                assert not back, f"stored offsets moved backwards during the freeze: {back}"
                assert set(seen) <= set(now), f"partitions vanished from partition_offsets: {seen} -> {now}"
                seen = now
                polls += 1
                time.sleep(0.2)
            assert led.alive(), f"the ledger exited while the broker was frozen\n{led.describe()}"
            at_resume = sum(seen.values())
            assert at_resume < topic.end, (
                f"the ledger stored the whole topic while the broker was frozen ({at_resume}/{topic.end}): "
                f"it had prefetched it, the freeze was not felt")
            retries_frozen = led.retries() - retries_before
        finally:
            broker.resume()  # the module's broker serves the other scenarios
        resumed = time.monotonic()
        wait_exact(db, led, topic, timeout=120)
        recovery = time.monotonic() - resumed
        figures = final_checks(db, led, topic)
        transactions = led.transactions()
        rc = led.terminate(timeout=30)
        assert rc == 0, f"ledger exit code {rc} after SIGTERM\n{led.describe()}"
        report("ledger-broker-frozen", deltas=topic.deltas, records=topic.records, partitions=len(topic.ends),
               max_batch_records=MAX_BATCH_RECORDS, freeze_s=f"{resumed - frozen_at:.2f}",
               offsets_at_freeze=f"{at_freeze}/{topic.end}", offsets_at_resume=f"{at_resume}/{topic.end}",
               applied_while_frozen=at_resume - at_freeze, offset_polls_while_frozen=polls,
               retries_while_frozen=retries_frozen, transactions=transactions,
               resume_to_exact_s=f"{recovery:.2f}", total_s=f"{time.monotonic() - started:.2f}",
               users=len(topic.truth), announces_applied=figures["announces"],
               rejected_records=figures["rejected"], exit_code=rc)
    finally:
        led.stop()
        db.close()


def test_two_ledgers_split_partitions_one_killed(privtrak_bin, topic, tmp_path):
    assert sorted(topic.ends) == [0, 1, 2, 3], topic.ends
    first_parts, second_parts = [0, 1], [2, 3]
    db = fresh_db(f"ledger_faults_split_{os.getpid()}")

    def ledger(name: str, partitions: List[int]) -> LedgerProcess:
        return LedgerProcess(privtrak_bin, tmp_path, topic.bootstrap, db.name, name=f"{db.name}-{name}",
                             partitions=partitions)

    first, second = ledger("p01", first_parts), ledger("p23", second_parts)
    replacement, overlap = ledger("p23-replacement", second_parts), ledger("overlap", [0, 1, 2, 3])
    all_ledgers = [first, second, replacement, overlap]
    stored = lambda parts: sum(db.offsets().get(p, 0) for p in parts)  # noqa: E731
    end_of = lambda parts: sum(topic.ends[p] for p in parts)  # noqa: E731
    try:
        started = time.monotonic()
        first.start()
        second.start()
        poll(lambda: stored(first_parts) > 0 and stored(second_parts) > 0, 60,
             "both ledgers to store offsets", [first, second])
        rc = second.kill()
        assert rc == -signal.SIGKILL, rc
        at_kill = db.offsets()
        second_at_kill = sum(at_kill.get(p, 0) for p in second_parts)
        assert second_at_kill < end_of(second_parts), (
            f"the second ledger applied all its partitions ({second_at_kill}/{end_of(second_parts)}) before "
            f"the kill: more deltas needed")
        assert set(at_kill) <= set(first_parts + second_parts), at_kill
        killed = time.monotonic()
        # The first finishes its own partitions; the killed one's stay where it stopped.
        poll(lambda: all(db.offsets().get(p, 0) >= topic.ends[p] for p in first_parts), 120,
             f"the first ledger's partitions {first_parts} to reach their high watermarks", [first],
             on_timeout=lambda: f"stored {db.offsets()}, ends {topic.ends}")
        first_done_s = time.monotonic() - killed
        after = db.offsets()
        # A transaction the killed ledger had already sent may still commit
        # (PostgreSQL finishes a statement whose client died): at most one
        # batch of records (plus the transaction markers among them) past
        # what was stored at the kill, and still short of the end.
        second_after = sum(after.get(p, 0) for p in second_parts)
        assert second_after - second_at_kill <= 2 * MAX_BATCH_RECORDS, (
            f"the killed ledger's partitions moved on by more than its transaction in flight: {at_kill} -> {after}")
        assert second_after < end_of(second_parts), (
            f"the killed ledger's partitions reached their end without it: {at_kill} -> {after}")
        assert {p: after[p] for p in first_parts} == {p: topic.ends[p] for p in first_parts}, after
        assert db.totals() != topic.truth, "exact without the killed ledger's partitions"
        first_transactions = first.transactions()

        # A replacement for the killed one's partitions and, concurrently, a
        # misconfigured ledger claiming every partition: both apply 2 and 3
        # from the same stored offsets; the offset check under the partition
        # row lock must skip whatever the other already committed.
        replaced = time.monotonic()
        replacement.start()
        overlap.start()
        poll(lambda: (overlap.counter("transactions") >= 3 and replacement.counter("transactions") >= 3)
             or stored(second_parts) >= end_of(second_parts), 60,
             "the replacement and the overlapping ledger to commit transactions side by side",
             [first, replacement, overlap], on_timeout=lambda: f"stored {db.offsets()}")
        overlap_transactions = overlap.counter("transactions")
        rc = overlap.terminate(timeout=30)
        assert rc == 0, f"overlapping ledger exit code {rc} after SIGTERM\n{overlap.describe()}"
        overlap_skipped = overlap.counter("skipped_already_applied")
        overlap_applied = overlap.counter("deltas_applied")
        overlap_stopped_at = db.offsets()
        wait_exact(db, replacement, topic)
        recovery = time.monotonic() - replaced
        assert first.alive(), first.describe()
        figures = final_checks(db, replacement, topic)
        replacement_skipped = replacement.counter("skipped_already_applied")
        replacement_applied = replacement.counter("deltas_applied")
        replacement_transactions = replacement.transactions()
        first_applied = first.counter("deltas_applied")
        for led in (first, replacement):
            rc = led.terminate(timeout=30)
            assert rc == 0, f"ledger {led.name} exit code {rc} after SIGTERM\n{led.describe()}"
        report("ledger-split-partitions", deltas=topic.deltas, records=topic.records, partitions=len(topic.ends),
               max_batch_records=MAX_BATCH_RECORDS, ends=topic.ends,
               offsets_at_kill=",".join(f"{p}:{at_kill.get(p, 0)}" for p in sorted(topic.ends)),
               second_at_kill=f"{second_at_kill}/{end_of(second_parts)}",
               second_committed_after_kill=second_after - second_at_kill,
               first_done_after_kill_s=f"{first_done_s:.2f}", first_transactions=first_transactions,
               first_applied=first_applied, second_transactions_seen=second.transactions_before,
               replacement_transactions=replacement_transactions, replacement_applied=replacement_applied,
               replacement_skipped=replacement_skipped, overlap_transactions=overlap_transactions,
               overlap_applied=overlap_applied, overlap_skipped=overlap_skipped,
               offsets_when_overlap_stopped=",".join(f"{p}:{overlap_stopped_at.get(p, 0)}"
                                                     for p in sorted(topic.ends)),
               replace_to_exact_s=f"{recovery:.2f}", total_s=f"{time.monotonic() - started:.2f}",
               users=len(topic.truth), announces_applied=figures["announces"],
               rejected_records=figures["rejected"])
    finally:
        for led in all_ledgers:
            led.stop()
        db.close()


# Scenario 5 runs on ports of its own (a broker and a PostgreSQL of its own),
# apart from the other scenarios' (PG_PORT, free broker ports).
GROUP_PG_PORT = 19634
GROUP_BROKER_PORT = 19691
GROUP_TOPIC = "faults-ledger-group"
# Tansu holds a JoinGroup for half the session timeout: 6 s makes a join or a
# rebalance take about 3 s, and a killed member's partitions move after about
# 6 s (librdkafka's default 45 s: about 23 s and 45 s).
GROUP_PROPERTIES = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"}


@pytest.fixture(scope="module")
def group_topic(privtrak_bin: str, tmp_path_factory) -> Topic:
    pg("start", GROUP_PG_PORT)
    try:
        with produce_topic(privtrak_bin, tmp_path_factory.mktemp("ledger-group-topic"), GROUP_BROKER_PORT,
                           GROUP_TOPIC) as t:
            yield t
    finally:
        pg("stop", GROUP_PG_PORT)


def test_two_ledgers_in_one_group_one_killed(privtrak_bin, group_topic, tmp_path):
    topic = group_topic
    assert sorted(topic.ends) == [0, 1, 2, 3], topic.ends
    all_parts = set(topic.ends)
    db = fresh_db(f"ledger_faults_group_{os.getpid()}", GROUP_PG_PORT)
    group = f"faults-ledger-group-{os.getpid()}-{time.monotonic_ns() % 1_000_000}"

    def ledger(name: str) -> LedgerProcess:
        return LedgerProcess(privtrak_bin, tmp_path, topic.bootstrap, db.name, name=f"{db.name}-{name}",
                             group=group, kafka_properties=GROUP_PROPERTIES, topic=topic.name,
                             pg_port=GROUP_PG_PORT)

    first, second = ledger("first"), ledger("second")
    stored = lambda parts: sum(db.offsets(topic.name).get(p, 0) for p in parts)  # noqa: E731
    end_of = lambda parts: sum(topic.ends[p] for p in parts)  # noqa: E731
    owned = lambda led: set(led.partition_lag())  # noqa: E731 - the partitions whose lag it reports
    try:
        started = time.monotonic()
        first.start()
        second.start()
        # The group forms: each holds some partitions, together all, none twice.
        poll(lambda: owned(first) and owned(second) and not owned(first) & owned(second)
             and owned(first) | owned(second) == all_parts, 120,
             "the group to split the partitions between the two ledgers", [first, second],
             on_timeout=lambda: f"first reports {owned(first)}, second {owned(second)}")
        joined_s = time.monotonic() - started
        first_parts, second_parts = sorted(owned(first)), sorted(owned(second))
        # The second is killed mid-run: as soon as it committed something (a
        # ledger applies this topic in about a second).
        poll(lambda: stored(second_parts) > 0, 60, "the second ledger to store offsets", [first, second],
             on_timeout=lambda: f"stored {db.offsets(topic.name)}")
        assert owned(second) == set(second_parts), "a rebalance after the split: the kill would not be mid-run"
        rc = second.kill()
        assert rc == -signal.SIGKILL, rc
        killed = time.monotonic()
        at_kill = db.offsets(topic.name)
        second_at_kill = sum(at_kill.get(p, 0) for p in second_parts)
        assert second_at_kill < end_of(second_parts), (
            f"the second ledger applied all its partitions ({second_at_kill}/{end_of(second_parts)}) before "
            f"the kill: more deltas needed")
        # The group notices (session timeout), the first gets every partition
        # and starts them at the stored offsets.
        poll(lambda: owned(first) == all_parts, 120,
             "the first ledger to be assigned the killed one's partitions too", [first],
             on_timeout=lambda: f"first reports {owned(first)}; stored {db.offsets(topic.name)}")
        takeover_s = time.monotonic() - killed
        wait_exact(db, first, topic)
        exact_s = time.monotonic() - killed
        figures = final_checks(db, first, topic)
        metrics = first.metrics()
        skipped = int(metrics.get("privtrak_ledger_skipped_already_applied_total", 0))
        rebalances = int(metrics.get("privtrak_ledger_rebalances_total", 0))
        # What the first read after the takeover started at the killed one's
        # stored offsets (its statement in flight at the kill, if any, had
        # long ended): nothing it read had been applied.
        assert skipped == 0, f"the first ledger skipped {skipped} already applied records"
        lag = first.partition_lag()
        assert lag == {p: 0 for p in all_parts}, f"lag per partition after the end: {lag}"
        assert first.partition_lag("seconds") == {p: 0 for p in all_parts}, first.partition_lag("seconds")
        assert "revoked partitions" in first.log() or "lost partitions" in first.log(), first.describe()
        transactions = first.transactions()
        rc = first.terminate(timeout=30)
        assert rc == 0, f"ledger exit code {rc} after SIGTERM\n{first.describe()}"
        report("ledger-group-one-killed", deltas=topic.deltas, records=topic.records, partitions=len(topic.ends),
               max_batch_records=MAX_BATCH_RECORDS, session_timeout_ms=GROUP_PROPERTIES["session.timeout.ms"],
               start_to_split_s=f"{joined_s:.2f}", first_parts=first_parts, second_parts=second_parts,
               offsets_at_kill=",".join(f"{p}:{at_kill.get(p, 0)}" for p in sorted(topic.ends)),
               second_at_kill=f"{second_at_kill}/{end_of(second_parts)}",
               kill_to_takeover_s=f"{takeover_s:.2f}", kill_to_exact_s=f"{exact_s:.2f}",
               first_transactions=transactions, first_rebalances=rebalances, first_skipped=skipped,
               second_transactions_seen=second.transactions_before, users=len(topic.truth),
               announces_applied=figures["announces"], rejected_records=figures["rejected"],
               total_s=f"{time.monotonic() - started:.2f}")
    finally:
        for led in (first, second):
            led.stop()
        db.close()
