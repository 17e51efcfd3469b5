"""Sending at a rate, and finding the highest rate that loses nothing.

Both the harness's publisher and the raw-pyzmq baseline pace their sends with
`waiter` and search their zero-drop rate with `highest_sustained`, so the two
figures the harness-efficiency ratio divides were found the same way.

Pacing. Linux oversleeps by about 50 to 100 µs (timer slack), so below
SPIN_RATE_PER_S a sender sleeps until SPIN_NS before an update is due and
spins the rest of the way. Above it updates are due closer together than a
sleep lasts, and spinning would hold a whole core that the subscribers (and
ZeroMQ's I/O threads) need on a small machine; the sender then sleeps and
sends what fell due meanwhile back to back.

The search spends a fixed number of probes:

    1. as fast as possible: if even that loses nothing, the sender is the
       limit and its send rate is the answer;
    2. otherwise the rate the receivers took at full speed, a first guess of
       their capacity, then bisection (geometric, since rates span decades)
       between the highest sustained and the lowest failed rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

SPIN_NS = 60_000
SPIN_RATE_PER_S = 1e9 / SPIN_NS
# A sender that sends slower than this share of the rate asked for did not
# sustain it, even if nothing was dropped: it only fell behind.
SUSTAINED_SHARE = 0.97


def waiter(rate: float | None) -> Callable[[int], int]:
    """How to wait for an update due at a `time.monotonic_ns()`; the wait
    returns the moment it ended. `None` is the hospital's clock (slow)."""
    return wait_until if rate is None or rate <= SPIN_RATE_PER_S else sleep_until


def sleep_until(due_ns: int) -> int:
    # time.sleep never wakes early, so the update goes at or after its time.
    time.sleep(max(due_ns - time.monotonic_ns(), 0) / 1e9)
    return time.monotonic_ns()


def wait_until(due_ns: int) -> int:
    now = time.monotonic_ns()
    if due_ns - now > SPIN_NS:
        time.sleep((due_ns - now - SPIN_NS) / 1e9)
    while (now := time.monotonic_ns()) < due_ns:
        pass
    return now


def sustained(
    rate: float, *, published_per_s: float, dropped: int, clean: bool = True
) -> bool:
    """Whether a probe at `rate` (inf: as fast as possible) lost nothing and
    kept to its rate."""
    return (
        clean
        and dropped == 0
        and (math.isinf(rate) or published_per_s >= SUSTAINED_SHARE * rate)
    )


def highest_sustained(probe: Callable[[float], dict[str, Any]], probes: int) -> float:
    """The highest rate `probe` sustained within `probes` probes (0.0 if
    none). `probe(rate)` runs at `rate` (inf: as fast as possible) and returns
    a dict with `sustained`, `published_per_s` and `delivered_per_s`.

    The answer is what a sustained probe actually sent, not what it was asked
    for: a probe may fall up to SUSTAINED_SHARE short of its rate and still
    count, and the figure should not claim those few percent."""
    first = probe(math.inf)
    if first["sustained"]:
        return first["published_per_s"]
    highest_ok, lowest_failed = 0.0, first["published_per_s"]
    best_sent = 0.0
    guess = min(first["delivered_per_s"], lowest_failed)
    for _ in range(probes - 1):
        if guess <= 0:
            break
        outcome = probe(guess)
        if outcome["sustained"]:
            highest_ok = guess
            best_sent = max(best_sent, min(guess, outcome["published_per_s"]))
        else:
            lowest_failed = guess
        guess = (
            math.sqrt(highest_ok * lowest_failed) if highest_ok else lowest_failed / 2
        )
    return best_sent
