"""Endpoints: parsing them, and binding with errors a user can act on."""

from __future__ import annotations

import errno
import ipaddress
import re

import zmq

from sim.errors import EndpointError

_TCP = re.compile(
    r"^tcp://(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+|\*):(?P<port>\d+|\*)$"
)
_IPC = re.compile(r"^ipc://(?P<path>[^\s]+)$")
EXAMPLE = "tcp://127.0.0.1:5555"


def parse(endpoint: str) -> tuple[str, str]:
    """(transport, host or path) of an endpoint; raises EndpointError."""
    match = _TCP.match(endpoint)
    if match:
        port = match["port"]
        if port != "*" and not 1 <= int(port) <= 65535:
            raise EndpointError(
                f"port {port} in endpoint {endpoint!r} is out of range: use 1-65535"
            )
        return "tcp", match["host"].strip("[]")
    match = _IPC.match(endpoint)
    if match:
        return "ipc", match["path"]
    raise EndpointError(
        f"cannot parse endpoint {endpoint!r}: write tcp://HOST:PORT, e.g. {EXAMPLE}"
    )


def is_loopback(endpoint: str) -> bool:
    """True where only this machine can reach the endpoint."""
    transport, host = parse(endpoint)
    if transport == "ipc":
        return True
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(socket: zmq.Socket, endpoint: str) -> str:
    """Bind and return the endpoint actually bound (with its real port)."""
    parse(endpoint)
    try:
        socket.bind(endpoint)
    except zmq.ZMQError as error:
        if error.errno == errno.EADDRINUSE:
            raise EndpointError(
                f"cannot bind {endpoint}: the address is in use; stop what holds it"
                " or choose another port with --endpoint"
            ) from None
        raise EndpointError(
            f"cannot bind {endpoint}: {error.strerror}; check the address is one of"
            " this machine's"
        ) from None
    return socket.getsockopt_string(zmq.LAST_ENDPOINT)
