"""The simulated clock: when each update is due, in simulated and wall time.

Every patient gets `updates_per_day` updates a day, evenly spaced from
midnight (two a day: midnight and noon). All updates of one slot share its
simulated time, and the publisher sends them patient by patient.

Pacing is open-loop: each update has an intended wall time fixed before the run
starts, and a publisher that falls behind sends late rather than slowing the
schedule, so its lag shows up as latency measured from the intended time.

    clock  the simulated clock runs `day_seconds` of wall time per simulated
           day; a slot's updates are all due at the slot's instant (a burst,
           as in the hospital itself).
    rate   updates are due evenly spaced at `rate` per second, in send order.
    max    no schedule: each update is due when it is sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from sim.scenario import Scenario
from sim.wire import build_frames

SECONDS_PER_DAY = 86_400
# Frames are built in chunks of at most this many updates, so a slot of a
# million patients never needs a million frames in memory at once.
CHUNK_UPDATES = 16_384


@dataclass(frozen=True)
class Slot:
    """One instant at which every patient gets an update."""

    index: int  # also every patient's sequence number for this update
    day: int
    when: dt.datetime

    @property
    def epoch_seconds(self) -> int:
        return int(self.when.replace(tzinfo=dt.UTC).timestamp())


def slots(scenario: Scenario) -> Iterator[Slot]:
    midnight = dt.datetime.combine(scenario.start_date, dt.time())
    step = dt.timedelta(seconds=SECONDS_PER_DAY / scenario.updates_per_day)
    for day in range(scenario.days):
        for k in range(scenario.updates_per_day):
            index = day * scenario.updates_per_day + k
            yield Slot(index=index, day=day, when=midnight + index * step)


def intended_offsets_ns(
    scenario: Scenario, slot: Slot, first: int, count: int
) -> np.ndarray | int:
    """Intended send times, in ns after the run's start, of `count` updates of
    `slot` from its `first` patient; 0 where there is no schedule."""
    if scenario.paced_by == "clock":
        slot_ns = scenario.day_seconds * 1e9 / scenario.updates_per_day
        return int(slot.index * slot_ns)
    if scenario.paced_by == "rate":
        position = slot.index * scenario.patients + first + np.arange(count)
        return (position * (1e9 / scenario.rate)).astype(np.int64)
    return 0


def frame_chunks(scenario: Scenario, run_id: int) -> Iterator[np.ndarray]:
    """Every frame of the run, in send order, in chunks; intended times are
    offsets from the start and the publisher adds the start when it is known."""
    hospital = scenario.hospital()
    for slot in slots(scenario):
        for first in range(0, scenario.patients, CHUNK_UPDATES):
            count = min(CHUNK_UPDATES, scenario.patients - first)
            patients = np.arange(first + 1, first + count + 1, dtype=np.int64)
            yield build_frames(
                hospital.render(slot.when, slot.day, patients),
                message_bytes=scenario.message_bytes,
                run_id=run_id,
                patients=patients,
                seqs=np.full(count, slot.index, dtype=np.int64),
                sim_time=slot.epoch_seconds,
                intended_ns=intended_offsets_ns(scenario, slot, first, count),
            )


def scheduled_seconds(scenario: Scenario) -> float:
    """How long the schedule lasts in wall time; 0 for max."""
    if scenario.paced_by == "clock":
        return scenario.days * scenario.day_seconds
    if scenario.paced_by == "rate":
        return scenario.messages / scenario.rate
    return 0.0


def resume_chunks(chunks: Iterator[np.ndarray], skip: int) -> Iterator[np.ndarray]:
    """The chunks after the first `skip` updates, rescheduled so the first
    update left is due at once and the rest keep their spacing."""
    shift = None
    for chunk in chunks:
        if skip >= len(chunk):
            skip -= len(chunk)
            continue
        chunk = chunk[skip:]
        skip = 0
        if shift is None:
            shift = int(chunk["intended_ns"][0])
        chunk["intended_ns"] -= shift
        yield chunk
