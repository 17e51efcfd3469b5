"""pytest-benchmark suite for the harness's hot paths.

    make bench                                   (pytest bench --benchmark-only)
    pytest bench --benchmark-only --benchmark-autosave
    pytest bench --benchmark-only --benchmark-compare      (against the last save)

Each benchmark works on one batch of BATCH updates at the reference size and
records `us_per_update` in its extra info, so the figures read directly
against the raw-pyzmq baseline: at 200,000 updates a second a subscriber has
5 µs per update, receive included.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import zmq

from sim.accounting import TopicLedger
from sim.histogram import Histogram
from sim.publisher import Publisher
from sim.roles import make_subscriber
from sim.scenario import Scenario, resolve
from sim.schedule import frame_chunks, slots
from sim.subscriber import MAX_FLUSH_FRAMES, SubscriberSocket
from sim.wire import BatchDecoder, build_frames, raw_send

# How long a benchmark waits for a subscription or a frame before failing.
SUBSCRIPTION_TIMEOUT_MS = 10_000
# The subscriber's processing batch (see sim.subscriber), so per-update
# figures here are what a subscriber pays at full speed.
BATCH = MAX_FLUSH_FRAMES
PATIENTS = 250
BENCH_ROUNDS = 50


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    days = -(-BATCH // (2 * PATIENTS)) + 1
    return resolve(Scenario(patients=PATIENTS, days=days, rate=float("inf")))


@pytest.fixture(scope="module")
def frames(scenario) -> list[bytes]:
    records = np.concatenate(list(frame_chunks(scenario, run_id=7)))[:BATCH]
    records["actual_ns"] = records["intended_ns"] = 10**12
    return [row.tobytes() for row in records]


def per_update(benchmark, count: int = BATCH) -> None:
    benchmark.extra_info["updates"] = count
    benchmark.extra_info["us_per_update"] = benchmark.stats.stats.min * 1e6 / count


def test_encode_a_batch(benchmark, scenario):
    hospital = scenario.hospital()
    patients = np.arange(1, PATIENTS + 1, dtype=np.int64)
    texts = hospital.render(dt.datetime(2024, 5, 11), 0, patients)
    texts = np.tile(texts, BATCH // PATIENTS + 1)[:BATCH]
    numbers = np.tile(patients, BATCH // PATIENTS + 1)[:BATCH]
    benchmark(
        build_frames,
        texts,
        message_bytes=scenario.message_bytes,
        run_id=7,
        patients=numbers,
        seqs=np.zeros(BATCH, dtype=np.int64),
        sim_time=0,
    )
    per_update(benchmark)


def test_decode_a_batch(benchmark, scenario, frames):
    decoder = BatchDecoder(message_bytes=scenario.message_bytes, patients=PATIENTS)
    records, valid = benchmark(decoder.decode, frames)
    assert valid.all()
    per_update(benchmark)


def test_record_a_batch_of_latencies(benchmark):
    latencies = np.random.default_rng(1).integers(10_000, 5_000_000, BATCH)
    histogram = Histogram()
    benchmark(histogram.record, latencies)
    assert histogram.count >= BATCH
    per_update(benchmark)


def test_account_a_batch_of_sequence_numbers(benchmark, scenario, frames):
    records, _ = BatchDecoder(
        message_bytes=scenario.message_bytes, patients=PATIENTS
    ).decode(frames)

    def account() -> TopicLedger:
        ledger = TopicLedger(PATIENTS)
        ledger.record(records["patient"], records["seq"])
        return ledger

    ledger = benchmark(account)
    assert int(ledger.received.sum()) == BATCH
    assert ledger.gap_events == 0
    per_update(benchmark)


def test_render_a_slot_of_updates(benchmark):
    scenario = resolve(Scenario(patients=10_000))
    hospital = scenario.hospital()
    patients = np.arange(1, scenario.patients + 1, dtype=np.int64)
    texts = benchmark(hospital.render, dt.datetime(2024, 5, 11, 12), 0, patients)
    assert len(texts) == scenario.patients
    per_update(benchmark, scenario.patients)


def test_build_a_days_frames(benchmark):
    scenario = resolve(Scenario(patients=10_000, days=1, rate=float("inf")))

    def build_day() -> int:
        return sum(len(chunk) for chunk in frame_chunks(scenario, run_id=7))

    assert benchmark(build_day) == scenario.messages
    assert next(slots(scenario)).day == 0
    per_update(benchmark, scenario.messages)


def test_subscriber_processes_a_batch(benchmark, scenario, frames):
    """Everything a subscriber does per batch after receiving it: decode,
    foreign check, ledger, two latency histograms, per-day counts."""
    context = zmq.Context()
    publisher = context.socket(zmq.XPUB)
    publisher.bind("tcp://127.0.0.1:*")
    endpoint = publisher.getsockopt_string(zmq.LAST_ENDPOINT)
    subscriber = SubscriberSocket(
        make_subscriber("administration"),
        context=context,
        endpoint=endpoint,
        decoder=BatchDecoder(message_bytes=scenario.message_bytes, patients=PATIENTS),
        hwm=1000,
    )
    received = np.full(BATCH, 10**12 + 50_000, dtype=np.int64)
    try:
        # A fresh ledger each round: the same batch twice would be duplicates,
        # which take the slow path a real run never takes.
        benchmark.pedantic(
            subscriber._account,
            args=(frames, received),
            setup=subscriber.ledgers.clear,
            rounds=BENCH_ROUNDS,
        )
        assert subscriber.tally.foreign == 0
        assert subscriber.tally.malformed == 0
    finally:
        subscriber.close()
        publisher.close(linger=0)
        context.term()
    per_update(benchmark)


@pytest.fixture
def loopback_pair(scenario):
    """An XPUB and a SubscriberSocket joined on loopback, unlimited HWMs so
    a queued batch is never dropped; yields (send_batch, subscriber)."""
    context = zmq.Context()
    publisher = context.socket(zmq.XPUB)
    publisher.setsockopt(zmq.SNDHWM, 0)
    publisher.bind("tcp://127.0.0.1:*")
    subscriber = SubscriberSocket(
        make_subscriber("administration"),
        context=context,
        endpoint=publisher.getsockopt_string(zmq.LAST_ENDPOINT),
        decoder=BatchDecoder(message_bytes=scenario.message_bytes, patients=PATIENTS),
        hwm=0,
    )
    assert publisher.poll(SUBSCRIPTION_TIMEOUT_MS), "the subscription never arrived"
    publisher.recv()
    try:
        yield publisher, subscriber
    finally:
        subscriber.close()
        publisher.close(linger=0)
        context.term()


def drain(subscriber: SubscriberSocket, count: int) -> int:
    """Receive `count` frames with the harness's receive loop (bounded)."""
    taken = 0
    while taken < count:
        got = subscriber.receive()
        if not got and not subscriber.socket.poll(SUBSCRIPTION_TIMEOUT_MS):
            break
        taken += got
    subscriber._frames.clear()
    subscriber._stamps.clear()
    return taken


def test_receive_loop_takes_a_queued_batch(benchmark, loopback_pair, frames):
    """The per-frame receive loop (receive, size check, timestamp) on a batch
    already in flight: compare with test_bare_recv_takes_a_queued_batch."""
    publisher, subscriber = loopback_pair

    def queue() -> None:
        for frame in frames:
            publisher.send(frame)

    taken = benchmark.pedantic(
        drain, args=(subscriber, BATCH), setup=queue, rounds=BENCH_ROUNDS
    )
    assert taken == BATCH
    per_update(benchmark)


def test_bare_recv_takes_a_queued_batch(benchmark, loopback_pair, frames):
    """A bare pyzmq `recv` loop over the same batch: the floor."""
    publisher, subscriber = loopback_pair
    subscriber.socket.setsockopt(zmq.RCVTIMEO, SUBSCRIPTION_TIMEOUT_MS)
    recv = subscriber.socket.recv

    def queue() -> None:
        for frame in frames:
            publisher.send(frame)

    def bare() -> int:
        for _ in range(BATCH):
            recv()
        return BATCH

    assert benchmark.pedantic(bare, setup=queue, rounds=BENCH_ROUNDS) == BATCH
    per_update(benchmark)


@pytest.fixture
def filtering_publisher(scenario):
    """The harness's Publisher on loopback with one subscriber that follows a
    topic never sent: every send is accepted and filtered out at once, so a
    send loop is timed without a queue filling behind it."""
    context = zmq.Context()
    publisher = Publisher(scenario.replace(hwm=0), context)
    subscriber = context.socket(zmq.SUB)
    subscriber.connect(publisher.bind())
    subscriber.setsockopt(zmq.SUBSCRIBE, b"nobody")
    assert publisher.socket.poll(SUBSCRIPTION_TIMEOUT_MS), "no subscription arrived"
    publisher.socket.recv()
    try:
        yield publisher
    finally:
        subscriber.close(linger=0)
        publisher.close()
        context.term()


@pytest.fixture(scope="module")
def records(scenario) -> np.ndarray:
    return np.concatenate(list(frame_chunks(scenario, run_id=7)))[:BATCH].copy()


def test_publisher_send_loop_sends_a_batch(benchmark, filtering_publisher, records):
    """The publisher's loop as fast as it goes (stamp the send time into
    each frame, send): compare with the two bare loops below."""
    sent = benchmark.pedantic(
        filtering_publisher._send_chunk, args=(records, False), rounds=BENCH_ROUNDS
    )
    assert sent == BATCH
    per_update(benchmark)


def test_bare_compiled_send_sends_a_batch(benchmark, filtering_publisher, frames):
    """One compiled `send` per frame, nothing else: the harness's floor and
    the baseline's loop."""
    _bench_bare_sends(benchmark, raw_send(filtering_publisher.socket), frames)


def test_bare_socket_send_sends_a_batch(benchmark, filtering_publisher, frames):
    """pyzmq's usual `socket.send` per frame: what the wrapper around the
    compiled send costs."""
    _bench_bare_sends(benchmark, filtering_publisher.socket.send, frames)


def _bench_bare_sends(benchmark, send, frames: list[bytes]) -> None:
    """A loop of nothing but `send`, one frame each."""

    def bare() -> int:
        for frame in frames:
            send(frame)
        return BATCH

    assert benchmark.pedantic(bare, rounds=BENCH_ROUNDS) == BATCH
    per_update(benchmark)
