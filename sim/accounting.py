"""Exact drop accounting by sequence number.

Every topic carries its own sequence, starting at 0, and the publisher says at
the end how many updates it sent on each topic. A subscriber keeps, per topic,
the next sequence number it expects and how many distinct updates it has seen,
so at the end `dropped = published - received` exactly, per topic.

Within one TCP connection ZeroMQ delivers in order, so the common case is a
batch whose sequence numbers rise strictly on every topic; that case is
handled with a handful of vectorised operations, gaps included: a jump forward
is a gap, remembered as an interval of missing numbers. A number at or below
one already seen is either a late arrival that fills a remembered gap
(reordered) or a repeat (duplicate); that rare case is settled one message at
a time against the gap intervals.
"""

from __future__ import annotations

import bisect

import numpy as np


class TopicLedger:
    """Sequence accounting for the topics of one publisher run."""

    def __init__(self, patients: int) -> None:
        self.next_seq = np.zeros(patients + 1, dtype=np.int64)
        self.received = np.zeros(patients + 1, dtype=np.int64)
        self.duplicates = 0
        self.reordered = 0
        self.gap_events = 0
        self._new_gaps: list[np.ndarray] = []
        self._gaps: dict[int, list[list[int]]] = {}

    def record(self, patients: np.ndarray, seqs: np.ndarray) -> None:
        """Account for a batch of (patient, sequence) pairs in arrival order."""
        if len(patients) == 0:
            return
        order = np.argsort(patients, kind="stable")
        topic = patients[order].astype(np.int64)
        seq = seqs[order].astype(np.int64)
        starts = np.ones(len(topic), dtype=bool)
        starts[1:] = topic[1:] != topic[:-1]
        previous = np.empty_like(seq)
        previous[1:] = seq[:-1]
        previous[starts] = self.next_seq[topic[starts]] - 1
        if not (seq > previous).all():
            self._record_slowly(patients, seqs)
            return
        missing = seq - previous - 1
        if missing.any():
            gaps = np.flatnonzero(missing)
            self.gap_events += len(gaps)
            self._new_gaps.append(
                np.stack([topic[gaps], previous[gaps] + 1, seq[gaps]], axis=1)
            )
        self.received += np.bincount(topic, minlength=len(self.received))
        ends = np.ones(len(topic), dtype=bool)
        ends[:-1] = starts[1:]
        self.next_seq[topic[ends]] = seq[ends] + 1

    def _record_slowly(self, patients: np.ndarray, seqs: np.ndarray) -> None:
        self._settle_gaps()
        for patient, seq in zip(patients.tolist(), seqs.tolist(), strict=True):
            expected = int(self.next_seq[patient])
            if seq >= expected:
                if seq > expected:
                    self.gap_events += 1
                    self._gaps.setdefault(patient, []).append([expected, seq])
                self.next_seq[patient] = seq + 1
                self.received[patient] += 1
            elif self._fill_gap(patient, seq):
                self.reordered += 1
                self.received[patient] += 1
            else:
                self.duplicates += 1

    def _settle_gaps(self) -> None:
        """Move gaps found by the fast path into the per-topic interval lists."""
        for gaps in self._new_gaps:
            for patient, low, high in gaps.tolist():
                self._gaps.setdefault(patient, []).append([low, high])
        self._new_gaps.clear()

    def _fill_gap(self, patient: int, seq: int) -> bool:
        """Remove `seq` from the patient's missing intervals; False if absent."""
        intervals = self._gaps.get(patient, [])
        index = bisect.bisect_right(intervals, [seq, float("inf")]) - 1
        if index < 0 or not intervals[index][0] <= seq < intervals[index][1]:
            return False
        low, high = intervals[index]
        replacement = [
            pair for pair in ([low, seq], [seq + 1, high]) if pair[0] < pair[1]
        ]
        intervals[index : index + 1] = replacement
        return True
