"""Bad frames on the wire: the subscriber's decoders and receive path are fed
what hypothesis can think of (wrong part counts, truncated headers, non-UTF-8
text, huge frames) and must count, never crash.

The budget is fixed so CI runs the same examples every time: `derandomize`
makes hypothesis derive its examples from each test's source, and
`max_examples` bounds the work.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import wire
from sim.roles import make_subscriber
from sim.subscriber import SubscriberSocket

PATIENTS = 30
MESSAGE_BYTES = 256
FUZZ = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# The run id of the valid updates that mark the end of each example; the
# damaged frames are all of run 7.
SENTINEL_RUN = 0x5E17
# Bound on waiting for a message already sent on loopback.
DELIVERY_MS = 10_000


def valid_frame(
    patient: int = 1, seq: int = 0, text: bytes = b"Dear Caregiver", run_id: int = 7
) -> bytes:
    frames = wire.build_frames(
        np.array([text], dtype="S"),
        message_bytes=MESSAGE_BYTES,
        run_id=run_id,
        patients=np.array([patient]),
        seqs=np.array([seq]),
        sim_time=1_715_385_600,
        intended_ns=1,
    )
    return frames.tobytes()


@st.composite
def damaged_frames(draw: st.DrawFn) -> bytes:
    """A valid frame, then cut, overwritten or stretched where it hurts most."""
    frame = bytearray(valid_frame(draw(st.integers(1, PATIENTS))))
    damage = draw(st.sampled_from(["truncate", "overwrite", "text", "extend"]))
    if damage == "truncate":
        return bytes(frame[: draw(st.integers(0, len(frame) - 1))])
    if damage == "overwrite":
        start = draw(st.integers(0, wire.TEXT_OFFSET - 1))
        patch = draw(st.binary(min_size=1, max_size=16))
        frame[start : start + len(patch)] = patch
        return bytes(frame[:MESSAGE_BYTES])
    if damage == "text":
        text = draw(st.binary(min_size=1, max_size=MESSAGE_BYTES - wire.TEXT_OFFSET))
        frame[wire.TEXT_OFFSET : wire.TEXT_OFFSET + len(text)] = text
        length = draw(st.integers(0, 2**32 - 1) | st.just(len(text)))
        frame[40:44] = length.to_bytes(4, "little")
        return bytes(frame)
    return bytes(frame) + draw(st.binary(max_size=64))


any_frame = st.binary(max_size=2 * MESSAGE_BYTES) | damaged_frames()
same_size_frame = st.one_of(
    st.binary(min_size=MESSAGE_BYTES, max_size=MESSAGE_BYTES),
    damaged_frames().filter(lambda f: len(f) == MESSAGE_BYTES),
)


@FUZZ
@given(any_frame)
def test_fuzz_decode_frame_raises_only_malformed(frame: bytes) -> None:
    try:
        update = wire.decode_frame(frame)
    except wire.MalformedFrame:
        return
    assert update.topic == f"Patient_{update.patient}_data"
    assert update.text.encode() in frame


@FUZZ
@given(st.lists(same_size_frame, min_size=1, max_size=12))
def test_fuzz_batch_decoder_agrees_with_the_single_frame_decoder(
    frames: list[bytes],
) -> None:
    decoder = wire.BatchDecoder(message_bytes=MESSAGE_BYTES, patients=PATIENTS)
    records, valid = decoder.decode(frames)
    assert len(records) == len(valid) == len(frames)
    for frame, accepted in zip(frames, valid.tolist(), strict=True):
        try:
            update = wire.decode_frame(frame)
            expected = update.patient <= PATIENTS
        except wire.MalformedFrame:
            expected = False
        assert accepted == expected


def test_fuzz_decoders_refuse_a_huge_frame_without_copying_it() -> None:
    huge = bytes(64 * 1024 * 1024)
    with pytest.raises(wire.MalformedFrame):
        wire.decode_frame(huge)
    with pytest.raises(wire.MalformedFrame):
        wire.decode_frame(huge[:-1])


class _Wire:
    """A raw XPUB on loopback and a real SubscriberSocket (administration, so
    it takes every topic) connected to it."""

    def __init__(self, max_message_bytes: int = -1) -> None:
        self.context = zmq.Context()
        self.peer = self.context.socket(zmq.XPUB)
        self.peer.setsockopt(zmq.LINGER, 0)
        self.peer.setsockopt(zmq.SNDHWM, 0)
        self.peer.bind("tcp://127.0.0.1:*")
        self.subscriber = SubscriberSocket(
            make_subscriber("administration"),
            context=self.context,
            endpoint=self.peer.getsockopt_string(zmq.LAST_ENDPOINT),
            decoder=wire.BatchDecoder(message_bytes=MESSAGE_BYTES, patients=PATIENTS),
            hwm=0,
            max_message_bytes=max_message_bytes,
        )
        assert self.peer.poll(DELIVERY_MS), "the subscription never arrived"
        self.peer.recv()
        self.sentinels = 0

    def send_then_sentinel(self, message: list[bytes]) -> None:
        """Send `message`, then a valid update, and receive until it arrives:
        everything sent before it has then been taken by the subscriber."""
        self.peer.send_multipart(message)
        self.peer.send(valid_frame(2, self.sentinels, run_id=SENTINEL_RUN))
        self.sentinels += 1
        while self.subscriber.received_for(SENTINEL_RUN) < self.sentinels:
            assert self.subscriber.socket.poll(DELIVERY_MS), "the sentinel was lost"
            self.subscriber.receive()

    def close(self) -> None:
        self.subscriber.close()
        self.peer.close(linger=0)
        self.context.term()


@pytest.fixture
def hostile_wire():
    opened = _Wire()
    yield opened
    opened.close()


def test_fuzz_subscriber_socket_counts_garbage_and_keeps_receiving(
    hostile_wire: _Wire,
) -> None:
    @FUZZ
    @given(st.lists(any_frame, min_size=1, max_size=4))
    def one_message(parts: list[bytes]) -> None:
        before = hostile_wire.subscriber.tally.malformed
        hostile_wire.send_then_sentinel(parts)
        tally = hostile_wire.subscriber.tally
        hostile_wire.subscriber.flush()
        # Every garbage message is counted somewhere, never silently lost:
        # malformed, foreign (none here: administration follows all) or, for a
        # part that is itself a well-formed update, received.
        well_formed = sum(_is_update(part) for part in parts)
        assert tally.malformed - before >= (well_formed < len(parts))

    one_message()
    report = hostile_wire.subscriber.report(7, np.zeros(PATIENTS + 1, np.int64))
    assert report["malformed"] > 0
    assert hostile_wire.sentinels > 0


def _is_update(part: bytes) -> bool:
    if len(part) != MESSAGE_BYTES:
        return False
    try:
        return wire.decode_frame(part).patient <= PATIENTS
    except wire.MalformedFrame:
        return False


def test_fuzz_oversized_frame_ends_the_session_and_the_subscriber_notices() -> None:
    guarded = _Wire(max_message_bytes=MESSAGE_BYTES)
    try:
        guarded.send_then_sentinel([b"short"])
        guarded.peer.send(bytes(8 * 1024 * 1024))
        # The monitor already holds the handshake of this session; wait for
        # the session's end, event by event.
        while not guarded.subscriber.session_ended:
            assert guarded.subscriber.monitor.poll(DELIVERY_MS), "no end of session"
        # Nothing more arrives: ZeroMQ does not reconnect after this.
        guarded.peer.send(valid_frame(patient=3))
        assert not guarded.subscriber.socket.poll(500)
        report = guarded.subscriber.report(7, np.zeros(PATIENTS + 1, np.int64))
        assert report["session_ended"] is True
        assert report["disconnections"] == 1
        assert report["malformed"] == 1
    finally:
        guarded.close()


def test_fuzz_hostile_peer_cannot_crash_a_subscriber_process() -> None:
    """A raw XPUB sends a real `wardcast subscribe` process garbage, one good
    update, then a frame over its size limit: the process counts the garbage,
    shows the update, notices the session has ended for good and says so."""
    context = zmq.Context()
    peer = context.socket(zmq.XPUB)
    peer.setsockopt(zmq.LINGER, 0)
    peer.bind("tcp://127.0.0.1:*")
    endpoint = peer.getsockopt_string(zmq.LAST_ENDPOINT)
    subscriber = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "subscribe", "--role", "caregiver"]
        + ["--patient", "1", "--endpoint", endpoint, "--max-message-bytes", "4096"]
        + ["--reconnect-seconds", "1", "--max-seconds", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert peer.poll(DELIVERY_MS * 3), "the subscriber never subscribed"
        assert peer.recv() == b"\x01Patient_1_data\x00"
        topic = b"Patient_1_data\x00"
        garbage = [
            [topic],  # a header cut short
            [topic + b"\xff" * 300],  # the wrong size and no magic
            [topic, valid_frame()],  # two parts
            [valid_frame(text=b"\xc3\x28 not UTF-8")],
            [topic + bytes(wire.TEXT_OFFSET - len(topic))],  # header of zeros
        ]
        for message in garbage:
            peer.send_multipart(message)
        peer.send(valid_frame(text=b"Dear Caregiver, the one good update"))
        peer.send(topic + bytes(1024 * 1024))  # over the limit: ends the session
        out, err = subscriber.communicate(timeout=60)
    finally:
        subscriber.kill()
        peer.close(linger=0)
        context.term()
    assert subscriber.returncode == 1, err
    assert "Patient_1_data: Dear Caregiver, the one good update" in out
    assert out.count("(malformed update") == len(garbage)
    assert "received 1 updates; 0 missing by sequence number, 0 foreign," in out
    assert f"{len(garbage)} malformed; 1 sessions ended" in out
    assert "Traceback" not in err
    assert err.count("\n") == 1 and "ended and did not resume" in err


def test_fuzz_raw_tcp_garbage_never_crashes_a_subscriber_process() -> None:
    """Not even ZeroMQ: a TCP server on loopback that answers with noise."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    subscriber = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "subscribe", "--role", "administration"]
        + ["--endpoint", f"tcp://127.0.0.1:{port}", "--max-seconds", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        server.settimeout(30)
        connection, _ = server.accept()
        noise = np.random.default_rng(6).bytes(64 * 1024)
        with connection:
            try:
                connection.sendall(noise)
            except OSError:
                pass  # the subscriber may hang up first: that is the point
        out, err = subscriber.communicate(timeout=60)
    finally:
        subscriber.kill()
        server.close()
    assert "Traceback" not in err
    assert "received 0 updates" in out
