"""The publisher's progress, on a channel that cannot drop.

A subscriber that joins or leaves a running publisher (a Locust user does
both) needs to know how far the publisher has got, to tell an update that was
dropped from one that was never sent. Updates travel on PUB/SUB, which drops
by design, so the publisher answers questions about its progress on a REP
socket of its own (`wardcast publish --status ENDPOINT`): a request of any
content is answered with a JSON `Progress`.

The whole progress is one number. The publisher sends slot by slot, and in
each slot patient 1 to N in order (`sim.schedule.frame_chunks`), so after
`published` updates every topic has either `published // N` or one more:
`published_per_topic` recovers the count of every topic from that one number.
The count is updated after every chunk of frames the publisher sends, so it is
never above what was really sent: a subscriber that waits until it has seen
every sequence number below it has waited for nothing that was not sent.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import zmq

from sim import endpoints
from sim.errors import RunError

logger = logging.getLogger(__name__)

# How often the answering thread looks up from its socket to see whether it
# should stop; a shorter interval only burns CPU.
POLL_MS = 200


@dataclass
class Progress:
    """How far one publisher run has got."""

    run_id: int
    patients: int
    message_bytes: int
    published: int = 0
    finished: bool = False
    host: str = ""
    scenario: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Progress:
        return cls(**json.loads(raw))

    def per_topic(self) -> np.ndarray:
        return published_per_topic(self.published, self.patients)


def published_per_topic(published: int, patients: int) -> np.ndarray:
    """Updates sent on each topic (index = patient number, index 0 unused)
    after the first `published` updates of a run."""
    slots, into_slot = divmod(published, patients)
    counts = np.full(patients + 1, slots, dtype=np.int64)
    counts[1 : into_slot + 1] += 1
    counts[0] = 0
    return counts


class ProgressServer:
    """Answers progress requests from a thread beside the publisher."""

    def __init__(self, context: zmq.Context, endpoint: str, progress: Progress):
        self._progress = progress
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._socket = context.socket(zmq.REP)
        self._socket.setsockopt(zmq.LINGER, 0)
        self.endpoint = endpoints.bind(self._socket, endpoint)
        self._thread = threading.Thread(
            target=self._serve, name="progress", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        logger.info("answering progress requests on %s", self.endpoint)

    def advance(self, sent: int) -> None:
        with self._lock:
            self._progress.published += sent

    def finish(self) -> None:
        with self._lock:
            self._progress.finished = True

    def snapshot(self) -> Progress:
        with self._lock:
            return Progress(**asdict(self._progress))

    def _serve(self) -> None:
        try:
            while not self._stopping.is_set():
                if self._socket.poll(POLL_MS):
                    self._socket.recv()
                    self._socket.send(self.snapshot().to_json())
        finally:
            self._socket.close(linger=0)

    def stop(self) -> None:
        if self._thread.ident is None:  # never started: the socket is ours
            self._socket.close(linger=0)
            return
        self._stopping.set()
        self._thread.join()


def ask(context: zmq.Context, endpoint: str, timeout_s: float) -> Progress:
    """The progress of the publisher answering at `endpoint`; raises RunError
    when it does not answer within `timeout_s`. Works with `zmq.green`
    contexts too: the wait is a poll, which yields to other greenlets."""
    socket = context.socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    try:
        socket.connect(endpoint)
        socket.send(b"progress")
        if not socket.poll(int(timeout_s * 1000)):
            raise RunError(
                f"the publisher's progress endpoint {endpoint} did not answer within"
                f" {timeout_s:g} s: start `wardcast publish --status {endpoint}` or"
                " give the endpoint it answers on"
            )
        return Progress.from_json(socket.recv())
    finally:
        socket.close(linger=0)
