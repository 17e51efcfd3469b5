"""Accounting for subscribers that join and leave a running publisher: the
per-topic window of one Locust user, and tallies that merge across users,
processes and machines.

Kept apart from `sim.locust_users` because importing Locust patches the
standard library for gevent: the accounting is imported by the Locust master
and by tests, which must not be patched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.histogram import Histogram

# Names of foreign topics kept as evidence in a result.
FOREIGN_EXAMPLES = 5


class JoiningLedger:
    """Per-topic sequence accounting that starts at the first update seen.

    Within one TCP connection ZeroMQ delivers in order, so a sequence number
    below the next one expected can only be a repeat: it is counted as a
    duplicate. (The harness's `TopicLedger` also tells late arrivals from
    repeats; a Locust user has one connection, where they cannot happen.)
    """

    def __init__(self, patients: int) -> None:
        self.first = np.full(patients + 1, -1, dtype=np.int64)
        self.next_seq = np.zeros(patients + 1, dtype=np.int64)
        self.received = np.zeros(patients + 1, dtype=np.int64)
        self.duplicates = 0

    def record(self, patients: np.ndarray, seqs: np.ndarray) -> int:
        """Account for updates in arrival order; the number found missing."""
        missing = 0
        first, next_seq, received = self.first, self.next_seq, self.received
        for patient, seq in zip(patients.tolist(), seqs.tolist(), strict=True):
            if first[patient] < 0:
                first[patient] = next_seq[patient] = seq
            expected = next_seq[patient]
            if seq < expected:
                self.duplicates += 1
                continue
            missing += seq - expected
            next_seq[patient] = seq + 1
            received[patient] += 1
        return int(missing)

    def seen(self) -> np.ndarray:
        return self.first >= 0

    def behind(self, published: np.ndarray) -> int:
        """Updates the publisher has sent on seen topics beyond the last one
        received."""
        seen = self.seen()
        return int(np.maximum(published[seen] - self.next_seq[seen], 0).sum())

    def close(self, published: np.ndarray | None) -> tuple[int, int]:
        """(expected, received) over the window; the window of each seen topic
        ends at the publisher's count, or after the last update seen."""
        seen = self.seen()
        end = self.next_seq[seen]
        if published is not None:
            end = np.maximum(end, published[seen])
        return int((end - self.first[seen]).sum()), int(self.received[seen].sum())


@dataclass
class RoleTally:
    """What the users of one role have seen, mergeable across users and
    processes."""

    role: str
    users: int = 0
    topics: int = 0
    delivered: int = 0
    expected: int = 0
    received: int = 0
    dropped: int = 0
    foreign: int = 0
    malformed: int = 0
    stale: int = 0
    duplicates: int = 0
    foreign_topics: list[str] = field(default_factory=list)
    from_intended: Histogram = field(default_factory=Histogram)
    from_actual: Histogram = field(default_factory=Histogram)

    def merge(self, other: RoleTally) -> None:
        for name in (
            "users",
            "topics",
            "delivered",
            "expected",
            "received",
            "dropped",
            "foreign",
            "malformed",
            "stale",
            "duplicates",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        room = FOREIGN_EXAMPLES - len(self.foreign_topics)
        self.foreign_topics += other.foreign_topics[:room]
        self.from_intended.merge(other.from_intended)
        self.from_actual.merge(other.from_actual)

    def to_dict(self) -> dict:
        counts = {k: v for k, v in vars(self).items() if not k.startswith("from_")}
        counts["histograms"] = {
            "from_intended": self.from_intended.to_dict(),
            "from_actual": self.from_actual.to_dict(),
        }
        return counts

    @classmethod
    def from_dict(cls, raw: dict) -> RoleTally:
        counts = {k: v for k, v in raw.items() if k != "histograms"}
        return cls(
            **counts,
            from_intended=Histogram.from_dict(raw["histograms"]["from_intended"]),
            from_actual=Histogram.from_dict(raw["histograms"]["from_actual"]),
        )


@dataclass
class StepTally:
    """What every user of a process saw during one step of the load shape."""

    step: int
    delivered: int = 0
    dropped: int = 0
    from_intended: Histogram = field(default_factory=Histogram)

    def merge(self, other: StepTally) -> None:
        self.delivered += other.delivered
        self.dropped += other.dropped
        self.from_intended.merge(other.from_intended)

    def to_dict(self) -> dict:
        return {
            "step": self.step,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "histogram": self.from_intended.to_dict(),
        }

    @classmethod
    def from_dict(cls, raw: dict) -> StepTally:
        return cls(
            raw["step"],
            raw["delivered"],
            raw["dropped"],
            Histogram.from_dict(raw["histogram"]),
        )
