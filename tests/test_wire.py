"""The wire format: encoding, decoding and counting malformed frames."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from sim.hospital import Hospital
from sim.wire import (
    TEXT_OFFSET,
    BatchDecoder,
    MalformedFrame,
    build_frames,
    decode_frame,
    minimum_message_bytes,
)

SIZE = 384


def frames_for(patients: list[int], seq: int = 3) -> np.ndarray:
    hospital = Hospital(patients=50, seed=2)
    numbers = np.array(patients)
    when = dt.datetime(2024, 5, 12, 12)
    return build_frames(
        hospital.render(when, 1, numbers),
        message_bytes=SIZE,
        run_id=0xABCDEF,
        patients=numbers,
        seqs=np.full(len(numbers), seq),
        sim_time=int(when.replace(tzinfo=dt.UTC).timestamp()),
        intended_ns=123,
    )


def test_a_frame_decodes_to_what_was_encoded():
    frame = frames_for([17])[0].tobytes()
    assert len(frame) == SIZE
    assert frame.startswith(b"Patient_17_data\x00")
    update = decode_frame(frame)
    assert (update.topic, update.patient, update.seq) == ("Patient_17_data", 17, 3)
    assert update.run_id == 0xABCDEF
    assert update.intended_ns == 123
    assert update.when == dt.datetime(2024, 5, 12, 12)
    assert update.text.startswith("Dear Caregiver, on 2024-05-12 12:00:00: ")


def test_frame_size_is_aligned_and_holds_the_text():
    assert minimum_message_bytes(1) == TEXT_OFFSET + 8
    assert minimum_message_bytes(8) == TEXT_OFFSET + 8
    assert minimum_message_bytes(9) == TEXT_OFFSET + 16


def corrupt(frame: bytes, offset: int, replacement: bytes) -> bytes:
    return frame[:offset] + replacement + frame[offset + len(replacement) :]


def test_batch_decoder_counts_each_kind_of_malformed_frame_and_keeps_the_rest():
    good = [f.tobytes() for f in frames_for([1, 2, 3, 4, 5, 6])]
    text_start = TEXT_OFFSET + 10
    bad = [
        corrupt(good[0], 24, b"\x00\x00"),  # magic
        corrupt(good[1], 0, b"Patient_9_data"),  # topic disagrees with patient 2
        corrupt(good[2], 32, (99).to_bytes(4, "little")),  # no patient 99
        corrupt(good[3], 40, (10_000).to_bytes(4, "little")),  # text overruns
        corrupt(good[4], text_start, b"\xff\xfe"),  # not UTF-8
    ]
    decoder = BatchDecoder(message_bytes=SIZE, patients=50)
    records, valid = decoder.decode(bad + [good[5]])
    assert valid.tolist() == [False] * 5 + [True]
    assert records["patient"][valid].tolist() == [6]


def test_non_ascii_utf8_text_is_well_formed():
    frame = frames_for([1])[0].tobytes()
    accented = "é".encode()
    frame = corrupt(frame, TEXT_OFFSET + 10, accented)
    records, valid = BatchDecoder(message_bytes=SIZE, patients=50).decode([frame])
    assert valid.tolist() == [True]


@pytest.mark.parametrize(
    "frame",
    [b"", b"short", b"x" * 100, b"x" * SIZE],
)
def test_decode_frame_refuses_what_is_not_an_update(frame):
    with pytest.raises(MalformedFrame):
        decode_frame(frame)
