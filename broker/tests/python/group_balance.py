#!/usr/bin/env python3
"""Consumer groups (classic protocol) through the broker with a Python client.

Usage: group_balance.py BOOTSTRAP TOPIC LIB   (LIB = kafka-python | confluent)

1. Creates TOPIC with 6 partitions (admin client of LIB).
2. Starts three members of one group (session timeout 6000 ms, heartbeat 500 ms, auto commit
   off), each polling in its own thread and publishing its current assignment.
3. Waits until the three assignments are disjoint, cover all 6 partitions, each member >= 1.
4. Closes one member (a clean LeaveGroup); waits until the other two cover all 6 disjointly,
   which must take < 5 s (less than the session timeout: the leave, not expiry, moved them).
5. Starts a 4th member in a subprocess (group_member.py), waits until it owns partitions,
   SIGKILLs it (no LeaveGroup) and waits until the two in-process members cover all 6 again;
   that must take >= ~4 s (the session timeout expires the dead member, not a leave).
6. Commit/resume: produces 20 records to a 1-partition topic TOPIC-commit; a group member
   reads 8, commits offset 8 synchronously and closes; a new member of the same group starts
   at offset 8.

Prints "OK" and exits 0 on success; prints what it observed and exits 1 otherwise.
"""

import os
import signal
import subprocess
import sys
import threading
import time
import traceback

PARTITIONS = 6
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 500
BALANCE_TIMEOUT_S = 30
# After a SIGKILL the group may only move the dead member's partitions once its session
# (6 s) expired; anything faster than this means the broker did not wait for the timeout.
MIN_EXPIRY_S = 4.0
# A clean LeaveGroup must move the partitions well before the session timeout would have.
MAX_LEAVE_S = 5.0
COMMIT_RECORDS = 20
COMMIT_AT = 8
TIMEOUT_S = 60

CHILDREN = []  # subprocesses to kill on exit


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    for child in CHILDREN:
        if child.poll() is None:
            child.kill()
    # Member threads may be stuck inside a client call: do not wait for them.
    os._exit(1)


# --- client adapters --------------------------------------------------------------------------

class KafkaPythonLib:
    name = "kafka-python"

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap

    def create_topic(self, topic, partitions):
        from kafka import KafkaAdminClient
        admin = KafkaAdminClient(bootstrap_servers=[self.bootstrap],
                                 client_id="group-balance-admin", request_timeout_ms=30000)
        try:
            admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}},
                                wait_for_metadata=True)
        finally:
            admin.close()

    def consumer(self, group, client_id):
        from kafka import KafkaConsumer
        return KafkaConsumer(bootstrap_servers=[self.bootstrap], group_id=group,
                             client_id=client_id,
                             session_timeout_ms=SESSION_TIMEOUT_MS,
                             heartbeat_interval_ms=HEARTBEAT_MS,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             request_timeout_ms=30000)

    def subscribe(self, consumer, topic):
        # kafka-python 3.0.12 client bug worked around here and in poll_assignment: when a
        # rejoin follows quickly on a join and the member polls with a short timeout (100 ms),
        # it sometimes drops a *successful* SyncGroup response: it never applies the
        # assignment nor re-enables heartbeats, sends nothing more to the coordinator, and so
        # sits with a stale/empty assignment after the broker (correctly) expires its session.
        # Fetching metadata first spares the leader its immediate rejoin (an assignment made
        # before it knew the partitions), and polls of 1 s make the race rare (0 in 15 runs,
        # against ~1 in 6 runs with 100 ms polls).
        wait_for(f"kafka-python metadata for {topic}",
                 lambda: (bool(consumer.partitions_for_topic(topic)), None), TIMEOUT_S)
        consumer.subscribe([topic])

    def poll_assignment(self, consumer):
        consumer.poll(timeout_ms=1000)  # not shorter: see subscribe
        return frozenset(tp.partition for tp in consumer.assignment())

    def close(self, consumer):
        consumer.close(autocommit=False)

    def produce(self, topic, values):
        from kafka import KafkaProducer
        producer = KafkaProducer(bootstrap_servers=[self.bootstrap], acks="all",
                                 client_id="group-balance-producer")
        futures = [producer.send(topic, value=v, partition=0) for v in values]
        producer.flush(timeout=TIMEOUT_S)
        offsets = [f.get(timeout=TIMEOUT_S).offset for f in futures]
        producer.close()
        return offsets

    def poll_records(self, consumer):
        """Returns [(offset, value)] of one poll."""
        batches = consumer.poll(timeout_ms=1000)
        out = []
        for records in batches.values():
            out.extend((r.offset, r.value) for r in records)
        return out

    def commit_sync(self, consumer, topic, offset):
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata
        tp = TopicPartition(topic, 0)
        consumer.commit({tp: OffsetAndMetadata(offset, "", -1)})
        return consumer.committed(tp)


class ConfluentLib:
    name = "confluent"

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap

    def create_topic(self, topic, partitions):
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.bootstrap,
                             "client.id": "group-balance-admin"})
        futures = admin.create_topics([NewTopic(topic, num_partitions=partitions,
                                                replication_factor=1)],
                                      operation_timeout=30, request_timeout=30)
        for future in futures.values():
            future.result(timeout=TIMEOUT_S)

        def visible():
            t = admin.list_topics(topic=topic, timeout=10).topics.get(topic)
            if t is None or t.error is not None:
                return False, t and t.error
            return sorted(t.partitions) == list(range(partitions)), sorted(t.partitions)

        wait_for(f"{topic} to show {partitions} partitions in metadata", visible, TIMEOUT_S)

    def consumer(self, group, client_id):
        from confluent_kafka import Consumer
        return Consumer({"bootstrap.servers": self.bootstrap, "group.id": group,
                         "client.id": client_id,
                         "session.timeout.ms": SESSION_TIMEOUT_MS,
                         "heartbeat.interval.ms": HEARTBEAT_MS,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})

    def subscribe(self, consumer, topic):
        consumer.subscribe([topic])

    def poll_assignment(self, consumer):
        msg = consumer.poll(0.1)
        if msg is not None and msg.error() is not None:
            log(f"consumer error (ignored): {msg.error()}")
        return frozenset(tp.partition for tp in consumer.assignment())

    def close(self, consumer):
        consumer.close()

    def produce(self, topic, values):
        from confluent_kafka import Producer
        producer = Producer({"bootstrap.servers": self.bootstrap, "acks": "all",
                             "client.id": "group-balance-producer"})
        offsets, errors = {}, []

        def on_delivery(i):
            def cb(err, msg):
                if err is not None:
                    errors.append((i, err))
                else:
                    offsets[i] = msg.offset()
            return cb

        for i, v in enumerate(values):
            producer.produce(topic, value=v, partition=0, on_delivery=on_delivery(i))
            producer.poll(0)
        remaining = producer.flush(TIMEOUT_S)
        if remaining or errors:
            fail(f"produce to {topic}: {remaining} undelivered, errors {errors[:3]}")
        return [offsets.get(i) for i in range(len(values))]

    def poll_records(self, consumer):
        msg = consumer.poll(0.2)
        if msg is None:
            return []
        if msg.error() is not None:
            log(f"consumer error (ignored): {msg.error()}")
            return []
        return [(msg.offset(), msg.value())]

    def commit_sync(self, consumer, topic, offset):
        from confluent_kafka import TopicPartition
        result = consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
        for tp in result or []:
            if tp.error is not None:
                fail(f"commit of {topic}/0@{offset} failed: {tp.error}")
        committed = consumer.committed([TopicPartition(topic, 0)], timeout=30)
        return committed[0].offset


LIBS = {"kafka-python": KafkaPythonLib, "confluent": ConfluentLib}


# --- group members ------------------------------------------------------------------------------

class Assignments:
    """Latest published assignment of each member (name -> frozenset of partitions)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_member = {}
        self.errors = []

    def set(self, name, parts):
        with self.lock:
            self.by_member[name] = parts

    def remove(self, name):
        with self.lock:
            self.by_member.pop(name, None)

    def snapshot(self):
        with self.lock:
            return {k: sorted(v) for k, v in self.by_member.items()}, list(self.errors)


class Member:
    def __init__(self, lib, group, topic, name, assignments):
        self.lib, self.group, self.topic, self.name = lib, group, topic, name
        self.assignments = assignments
        self.stop = threading.Event()
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self.run, name=name, daemon=True)
        self.thread.start()

    def run(self):
        try:
            consumer = self.lib.consumer(self.group, self.name)
            self.lib.subscribe(consumer, self.topic)
            while not self.stop.is_set():
                self.assignments.set(self.name, self.lib.poll_assignment(consumer))
            self.lib.close(consumer)  # leaves the group
            self.assignments.remove(self.name)
            self.closed.set()
        except BaseException as e:  # reported by the waiting main thread
            with self.assignments.lock:
                self.assignments.errors.append(f"{self.name}: {e!r}\n{traceback.format_exc()}")

    def close(self, timeout):
        self.stop.set()
        if not self.closed.wait(timeout):
            fail(f"{self.name}: close() did not finish within {timeout}s; "
                 f"state {self.assignments.snapshot()}")


def wait_for(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = predicate()
        if ok:
            return last
        time.sleep(0.1)
    fail(f"timed out after {timeout}s waiting for {what}; last observed: {last!r}")


def balanced(assignments, names, extra=None):
    """Predicate: the members `names` (plus `extra()` -> (name, set) if given) own disjoint
    non-empty sets covering all partitions."""
    def check():
        snap, errors = assignments.snapshot()
        if errors:
            fail(f"a member thread failed: {errors}")
        owned = {n: snap.get(n) for n in names}
        if extra is not None:
            n, parts = extra()
            owned[n] = parts
        observed = {"members": owned, "all": snap}
        if any(v is None or len(v) == 0 for v in owned.values()):
            return False, observed
        flat = [p for v in owned.values() for p in v]
        ok = len(flat) == len(set(flat)) and sorted(flat) == list(range(PARTITIONS))
        return ok, observed
    return check


# --- the 4th member, in a subprocess --------------------------------------------------------------

class ChildMember:
    def __init__(self, bootstrap, topic, lib_name, group):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "group_member.py")
        self.proc = subprocess.Popen([sys.executable, script, bootstrap, topic, lib_name, group],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        CHILDREN.append(self.proc)
        self.lock = threading.Lock()
        self.parts = None
        self.stderr = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self):
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("ASSIGNED"):
                rest = line[len("ASSIGNED"):].strip()
                with self.lock:
                    self.parts = sorted(int(p) for p in rest.split(",") if p)

    def _read_stderr(self):
        for line in self.proc.stderr:
            with self.lock:
                self.stderr.append(line.rstrip())

    def current(self):
        with self.lock:
            return self.parts

    def check_alive(self):
        if self.proc.poll() is not None:
            with self.lock:
                err = "\n".join(self.stderr[-30:])
            fail(f"group_member.py exited early ({self.proc.returncode}):\n{err}")


# --- main -----------------------------------------------------------------------------------------

def group_balance(lib, bootstrap, topic):
    group = f"group-balance-{topic}"
    lib.create_topic(topic, PARTITIONS)
    log(f"created {topic} with {PARTITIONS} partitions")

    assignments = Assignments()
    names = ["member-a", "member-b", "member-c"]
    members = {n: Member(lib, group, topic, n, assignments) for n in names}

    t = time.monotonic()
    got = wait_for("3 members to own disjoint non-empty sets covering all partitions",
                   balanced(assignments, names), BALANCE_TIMEOUT_S)
    log(f"3 members balanced after {time.monotonic() - t:.1f}s: {got['members']}")

    # Clean leave.
    t = time.monotonic()
    members["member-c"].close(TIMEOUT_S)
    names = ["member-a", "member-b"]
    got = wait_for("2 members to cover all partitions after member-c left",
                   balanced(assignments, names), BALANCE_TIMEOUT_S)
    took = time.monotonic() - t
    log(f"after a clean leave, 2 members balanced in {took:.1f}s: {got['members']}")
    if took >= MAX_LEAVE_S:
        fail(f"after member-c closed (LeaveGroup), the others took {took:.1f}s to cover all "
             f"partitions: as long as a session timeout, so the leave was not honoured")

    # A member that dies without leaving.
    t = time.monotonic()
    child = ChildMember(bootstrap, topic, lib.name, group)

    def with_child():
        child.check_alive()
        return "subprocess", child.current()

    got = wait_for("the subprocess member to take partitions (3 members covering all)",
                   balanced(assignments, names, extra=with_child), BALANCE_TIMEOUT_S)
    log(f"subprocess joined in {time.monotonic() - t:.1f}s: {got['members']}")

    child.proc.send_signal(signal.SIGKILL)
    child.proc.wait(timeout=10)
    killed_at = time.monotonic()
    got = wait_for("the 2 remaining members to cover all partitions after the SIGKILL",
                   balanced(assignments, names), BALANCE_TIMEOUT_S)
    took = time.monotonic() - killed_at
    log(f"after SIGKILL, 2 members balanced in {took:.1f}s: {got['members']}")
    if took < MIN_EXPIRY_S:
        fail(f"partitions of the SIGKILLed member moved after {took:.1f}s, before its "
             f"{SESSION_TIMEOUT_MS} ms session could expire: {got['members']}")

    for n in names:
        members[n].close(TIMEOUT_S)


def commit_resume(lib, topic):
    topic = f"{topic}-commit"
    group = f"group-commit-{topic}"
    lib.create_topic(topic, 1)
    values = [f"rec-{i}".encode() for i in range(COMMIT_RECORDS)]
    offsets = lib.produce(topic, values)
    if offsets != list(range(COMMIT_RECORDS)):
        fail(f"produced offsets {offsets}, want 0..{COMMIT_RECORDS - 1}")

    def read(consumer, n, what):
        got = []
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < n:
            if time.monotonic() > deadline:
                fail(f"{what}: got only {got} within {TIMEOUT_S}s")
            got.extend(lib.poll_records(consumer))
        return got

    first = lib.consumer(group, "commit-first")
    lib.subscribe(first, topic)
    got = read(first, COMMIT_AT, "first consumer")[:COMMIT_AT]
    want = [(i, values[i]) for i in range(COMMIT_AT)]
    if got != want:
        fail(f"first consumer read {got}, want {want}")
    committed = lib.commit_sync(first, topic, COMMIT_AT)
    if committed != COMMIT_AT:
        fail(f"committed offset reads back as {committed!r}, want {COMMIT_AT}")
    lib.close(first)
    log(f"committed offset {COMMIT_AT} on {topic} for {group}")

    second = lib.consumer(group, "commit-second")
    lib.subscribe(second, topic)
    got = read(second, 1, "second consumer")
    if got[0] != (COMMIT_AT, values[COMMIT_AT]):
        fail(f"second consumer of the group started at {got[0]}, want "
             f"{(COMMIT_AT, values[COMMIT_AT])} (the committed offset)")
    lib.close(second)
    log(f"second consumer resumed at offset {got[0][0]}")


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in LIBS:
        fail(f"usage: {sys.argv[0]} BOOTSTRAP TOPIC {{{'|'.join(LIBS)}}}")
    bootstrap, topic, lib_name = sys.argv[1:]
    lib = LIBS[lib_name](bootstrap)
    group_balance(lib, bootstrap, topic)
    commit_resume(lib, topic)
    print("OK", flush=True)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        fail("unexpected exception (traceback above)")
