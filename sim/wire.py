"""The wire format: one ZeroMQ frame per update, of a fixed size per run.

    offset  size  field
         0    24  topic, `Patient_{i}_data`, ended and padded with NUL bytes
        24     2  magic 0x5743, little-endian like every field below
        26     1  format version
        27     1  flags (reserved, 0)
        28     4  run id: random per publisher run
        32     4  patient number (1-based), the topic's index
        36     4  sequence number of this update on its topic, from 0
        40     4  length of the update text in bytes
        44     4  reserved, 0
        48     8  simulated time, seconds since the Unix epoch
        56     8  intended send time, time.monotonic_ns() of the publisher
        64     8  actual send time, time.monotonic_ns() of the publisher
        72     …  the update text in UTF-8, then NUL padding to the frame size

Why this shape. The topic comes first because ZeroMQ filters on a frame's
leading bytes. It is one frame, not a topic frame plus a body frame: on the
reference machine `send_multipart` moved five times fewer messages per second
than one `send` per message. Every frame of a run has the same size (the
scenario's `message_bytes`, a multiple of 8), the same as the raw-pyzmq
baseline it is compared with, and a fixed size lets the subscriber decode a
whole batch as one numpy array instead of one Python call per message. The
topic field is fixed at 24 bytes for the same reason, which leaves room for
`Patient_999999999_data` and its terminator.

A subscriber treats a frame as malformed, counts it and goes on, when its size,
magic, version, patient number, topic or text length is wrong, or its text is
not UTF-8. The text is checked 8 bytes at a time: ASCII text (every update the
hospital writes) passes with one vectorised test, and only rows with a high bit
set are decoded one by one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import zmq

TOPIC_FIELD_BYTES = 24
TOPIC_TERMINATOR = b"\x00"
HEADER_BYTES = 48
TEXT_OFFSET = TOPIC_FIELD_BYTES + HEADER_BYTES
ACTUAL_SEND_OFFSET = 64
INTENDED_SEND_OFFSET = 56
MAGIC = 0x5743
VERSION = 1
FRAME_ALIGNMENT = 8
_HIGH_BITS = np.uint64(0x8080808080808080)
_TOPIC_WORDS = TOPIC_FIELD_BYTES // 8


def raw_send(socket: zmq.Socket) -> Callable[[memoryview], None]:
    """The socket's send without pyzmq's Python wrapper around it.

    `zmq.Socket.send` is a Python method that handles routing ids and groups
    (unused here) before it calls the compiled send; that wrapper alone costs
    about 0.5 µs a message here, as much as a bare compiled send. The harness's
    send loop and the raw-pyzmq baseline both call the compiled send, so the
    baseline stays the fastest plain way and the ratio between them is fair."""
    return zmq.backend.Socket.send.__get__(socket)


class MalformedFrame(ValueError):
    """A frame that does not follow the wire format."""


def frame_dtype(message_bytes: int) -> np.dtype:
    """The numpy record of one frame of `message_bytes` bytes."""
    return np.dtype(
        [
            ("topic", f"S{TOPIC_FIELD_BYTES}"),
            ("magic", "<u2"),
            ("version", "u1"),
            ("flags", "u1"),
            ("run_id", "<u4"),
            ("patient", "<u4"),
            ("seq", "<u4"),
            ("text_len", "<u4"),
            ("reserved", "<u4"),
            ("sim_time", "<i8"),
            ("intended_ns", "<i8"),
            ("actual_ns", "<i8"),
            ("text", f"S{message_bytes - TEXT_OFFSET}"),
        ]
    )


def minimum_message_bytes(longest_text: int) -> int:
    """The smallest frame size that holds a text of `longest_text` bytes."""
    size = TEXT_OFFSET + longest_text
    return -(-size // FRAME_ALIGNMENT) * FRAME_ALIGNMENT


def topic_fields(patients: int) -> np.ndarray:
    """The topic field of every patient, indexed by patient number; index 0
    holds an empty field that no valid frame carries."""
    numbers = np.arange(patients + 1).astype("S10")
    fields = np.strings.add(np.strings.add(b"Patient_", numbers), b"_data")
    fields[0] = b""
    return fields.astype(f"S{TOPIC_FIELD_BYTES}")


def build_frames(
    texts: np.ndarray,
    *,
    message_bytes: int,
    run_id: int,
    patients: np.ndarray,
    seqs: np.ndarray,
    sim_time: int,
    intended_ns: np.ndarray | int = 0,
) -> np.ndarray:
    """Frames for one batch of updates, ready to send but for the actual send
    time, which the publisher writes as it sends each one."""
    frames = np.zeros(len(patients), dtype=frame_dtype(message_bytes))
    frames["topic"] = topic_fields(int(patients.max()))[patients]
    frames["magic"] = MAGIC
    frames["version"] = VERSION
    frames["run_id"] = run_id
    frames["patient"] = patients
    frames["seq"] = seqs
    frames["text_len"] = np.strings.str_len(texts)
    frames["sim_time"] = sim_time
    frames["intended_ns"] = intended_ns
    frames["text"] = texts
    return frames


@dataclass(frozen=True)
class Update:
    """One decoded frame."""

    topic: str
    run_id: int
    patient: int
    seq: int
    sim_time: int
    intended_ns: int
    actual_ns: int
    text: str

    @property
    def when(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.sim_time, dt.UTC).replace(tzinfo=None)


def decode_frame(frame: bytes) -> Update:
    """Decode one frame of any valid size, or raise MalformedFrame."""
    size = len(frame)
    if size < TEXT_OFFSET or size % FRAME_ALIGNMENT:
        raise MalformedFrame(f"frame of {size} bytes is not a wardcast update")
    record = np.frombuffer(frame, dtype=frame_dtype(size))[0]
    if record["magic"] != MAGIC or record["version"] != VERSION:
        raise MalformedFrame("frame has the wrong magic number or version")
    patient = int(record["patient"])
    expected_topic = f"Patient_{patient}_data".encode()
    if patient == 0 or record["topic"] != expected_topic:
        raise MalformedFrame(f"topic does not match patient {patient}")
    text_len = int(record["text_len"])
    if text_len > size - TEXT_OFFSET:
        raise MalformedFrame(f"text length {text_len} overruns the frame")
    try:
        text = frame[TEXT_OFFSET : TEXT_OFFSET + text_len].decode()
    except UnicodeDecodeError as error:
        raise MalformedFrame(f"update text is not UTF-8: {error.reason}") from None
    return Update(
        topic=expected_topic.decode(),
        run_id=int(record["run_id"]),
        patient=patient,
        seq=int(record["seq"]),
        sim_time=int(record["sim_time"]),
        intended_ns=int(record["intended_ns"]),
        actual_ns=int(record["actual_ns"]),
        text=text,
    )


class BatchDecoder:
    """Decodes batches of same-size frames for one subscriber process."""

    def __init__(self, *, message_bytes: int, patients: int) -> None:
        self.message_bytes = message_bytes
        self.patients = patients
        self._dtype = frame_dtype(message_bytes)
        # The topic field as three 8-byte words per patient: comparing words
        # costs a fraction of comparing 24-byte numpy strings.
        self._topic_words = (
            topic_fields(patients).view("<u8").reshape(patients + 1, _TOPIC_WORDS)
        )

    def decode(self, frames: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """The records of a batch and a mask of those that are well formed.

        Every frame must already be `message_bytes` long; the receive loop
        sets aside frames of any other size.
        """
        blob = b"".join(frames)
        records = np.frombuffer(blob, dtype=self._dtype)
        patient = records["patient"]
        valid = (
            (records["magic"] == MAGIC)
            & (records["version"] == VERSION)
            & (patient >= 1)
            & (patient <= self.patients)
            & (records["text_len"] <= self.message_bytes - TEXT_OFFSET)
        )
        words = np.frombuffer(blob, dtype="<u8").reshape(len(frames), -1)
        expected = self._topic_words[np.where(valid, patient, 0)]
        valid &= (words[:, :_TOPIC_WORDS] == expected).all(axis=1)
        # One OR across each text, then one test of the high bits: no
        # temporary the size of the batch's text.
        text_bits = np.bitwise_or.reduce(words[:, TEXT_OFFSET // 8 :], axis=1)
        high = (text_bits & _HIGH_BITS) != 0
        for row in np.flatnonzero(high & valid):
            valid[row] = _is_utf8(records[row])
        return records, valid


def _is_utf8(record: np.void) -> bool:
    text = bytes(record["text"])[: int(record["text_len"])]
    try:
        text.decode()
    except UnicodeDecodeError:
        return False
    return True
