"""The control channel between the harness and its worker processes.

Updates travel on PUB/SUB, which drops by design; everything that must arrive
travels here instead: configuration, readiness, the publisher's end-of-run
counts and every subscriber's report. The harness binds a ROUTER and each
worker connects a DEALER named by its worker id. Both are reliable over TCP:
they queue rather than drop, and the harness sets ROUTER_MANDATORY so that a
message for a worker that is gone raises instead of vanishing.

A message is [kind, JSON body, *binary frames].
"""

from __future__ import annotations

import json
from typing import Any

import zmq


def send(
    socket: zmq.Socket,
    kind: str,
    body: dict[str, Any] | None = None,
    *frames: bytes,
    to: bytes | None = None,
) -> None:
    parts = [kind.encode(), json.dumps(body or {}).encode(), *frames]
    if to is not None:
        parts.insert(0, to)
    socket.send_multipart(parts)


def receive(
    socket: zmq.Socket, *, routed: bool = False
) -> tuple[bytes | None, str, dict[str, Any], list[bytes]]:
    """(sender, kind, body, binary frames); sender is None on a DEALER."""
    parts = socket.recv_multipart()
    sender = parts.pop(0) if routed else None
    return sender, parts[0].decode(), json.loads(parts[1]), parts[2:]


def connect_worker(context: zmq.Context, endpoint: str, worker_id: str) -> zmq.Socket:
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.IDENTITY, worker_id.encode())
    socket.setsockopt(zmq.LINGER, 2000)
    socket.connect(endpoint)
    return socket


def await_message(
    socket: zmq.Socket, timeout_s: float
) -> tuple[str, dict[str, Any], list[bytes]] | None:
    """The next message on a worker's DEALER, or None after `timeout_s`."""
    if not socket.poll(int(timeout_s * 1000)):
        return None
    _, kind, body, frames = receive(socket)
    return kind, body, frames
