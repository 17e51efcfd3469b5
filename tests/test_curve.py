"""CURVE encryption and the ZAP allow-list: who may receive patient data.

Absence is shown against a witness: an allowed subscriber on the same
publisher receives every update while the others, whose handshakes the test
has seen fail, hold nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from sim import security
from sim.errors import EndpointError
from tests.conftest import free_port, read_result, run_wardcast

# Generous bound on any one handshake or delivery on a loaded two-core machine.
WAIT_MS = 10_000
UPDATES = 50
TOPIC = b"Patient_1_data\x00"


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    security.create_keys(folder, ["caregiver-1", "administration"])
    return folder


class _Sockets:
    """The sockets a test opens, all closed when it ends: none is left to the
    garbage collector, which would warn."""

    def __init__(self) -> None:
        self.context = zmq.Context()
        self.opened: list[zmq.Socket] = []

    def socket(self, kind: int) -> zmq.Socket:
        socket = self.context.socket(kind)
        socket.setsockopt(zmq.LINGER, 0)
        self.opened.append(socket)
        return socket

    def monitor(self, socket: zmq.Socket) -> zmq.Socket:
        monitor = socket.get_monitor_socket()
        self.opened.append(monitor)
        return monitor

    def close(self) -> None:
        for socket in reversed(self.opened):
            socket.close(linger=0)
        self.context.term()


@pytest.fixture
def sockets():
    opened = _Sockets()
    yield opened
    opened.close()


@pytest.fixture
def curve_publisher(sockets: _Sockets, keys: Path):
    """An XPUB CURVE server on loopback guarded by the allow-list in `keys`,
    and its endpoint. Tests that revoke a key do so before asking for it."""
    server = security.CurveServer(sockets.context, keys)
    socket = sockets.socket(zmq.XPUB)
    server.apply(socket)
    socket.bind("tcp://127.0.0.1:*")
    yield socket, socket.getsockopt_string(zmq.LAST_ENDPOINT)
    server.stop()


def _subscriber(
    sockets: _Sockets, endpoint: str, configure=lambda socket: None
) -> tuple[zmq.Socket, zmq.Socket]:
    socket = sockets.socket(zmq.SUB)
    configure(socket)
    monitor = sockets.monitor(socket)
    socket.connect(endpoint)
    socket.setsockopt(zmq.SUBSCRIBE, TOPIC)
    return socket, monitor


def _await_event(monitor: zmq.Socket, wanted: set[int]) -> int:
    """The first of the `wanted` monitor events, failing the test if none comes."""
    while monitor.poll(WAIT_MS):
        event = recv_monitor_message(monitor)["event"]
        if event in wanted:
            return event
    raise AssertionError(f"no monitor event among {wanted} within {WAIT_MS} ms")


def _publish_until_witness_has_all(
    publisher: zmq.Socket, witness: zmq.Socket
) -> list[bytes]:
    assert publisher.poll(WAIT_MS), "the allowed subscriber's subscription never came"
    assert publisher.recv() == b"\x01" + TOPIC
    sent = [TOPIC + f"update {i}".encode() for i in range(UPDATES)]
    for message in sent:
        publisher.send(message)
    received = []
    while len(received) < UPDATES and witness.poll(WAIT_MS):
        received.append(witness.recv())
    assert received == sent
    return sent


@pytest.mark.parametrize("intruder", ["unknown key", "plaintext", "wrong server key"])
def test_curve_publisher_sends_nothing_to_a_subscriber_not_on_the_allow_list(
    keys: Path, tmp_path: Path, sockets: _Sockets, curve_publisher, intruder: str
) -> None:
    publisher, endpoint = curve_publisher
    witness, _ = _subscriber(
        sockets,
        endpoint,
        lambda s: security.apply_client(s, keys, "caregiver-1"),
    )
    stranger_keys = tmp_path / "stranger"
    security.create_keys(stranger_keys, ["caregiver-1"])
    if intruder == "unknown key":
        # A well-formed key pair the publisher has never been given.
        configure = lambda s: security.apply_client(s, stranger_keys, "caregiver-1")  # noqa: E731
    elif intruder == "plaintext":
        configure = lambda s: None  # noqa: E731
    else:
        # An allowed client key, but talking to another server's key.
        def configure(s: zmq.Socket) -> None:
            security.apply_client(s, keys, "caregiver-1")
            s.setsockopt(
                zmq.CURVE_SERVERKEY, security.load_publisher_public(stranger_keys)
            )

    outsider, monitor = _subscriber(sockets, endpoint, configure)
    failures = {
        zmq.EVENT_HANDSHAKE_FAILED_AUTH,
        zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
        zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
        zmq.EVENT_DISCONNECTED,
    }
    assert _await_event(monitor, failures | {zmq.EVENT_HANDSHAKE_SUCCEEDED}) in (
        failures
    )
    _publish_until_witness_has_all(publisher, witness)
    assert not outsider.poll(0), f"a subscriber with {intruder} received an update"
    # Its subscription never reached the publisher either.
    assert not publisher.poll(0)


@pytest.fixture
def revoked_keys(keys: Path) -> Path:
    (keys / "subscribers" / "administration.key").unlink()
    return keys


def test_curve_allowed_subscriber_receives_after_revoked_one_is_refused(
    revoked_keys: Path, sockets: _Sockets, curve_publisher
) -> None:
    keys = revoked_keys
    publisher, endpoint = curve_publisher
    witness, _ = _subscriber(
        sockets, endpoint, lambda s: security.apply_client(s, keys, "caregiver-1")
    )
    revoked, monitor = _subscriber(
        sockets,
        endpoint,
        lambda s: security.apply_client(s, keys, "administration"),
    )
    event = _await_event(
        monitor, {zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_SUCCEEDED}
    )
    assert event == zmq.EVENT_HANDSHAKE_FAILED_AUTH
    _publish_until_witness_has_all(publisher, witness)
    assert not revoked.poll(0)


def test_curve_run_delivers_every_update_and_records_it(tmp_path: Path) -> None:
    completed = run_wardcast("run", "--curve", "--out", str(tmp_path / "run"))
    assert completed.returncode == 0, completed.stderr
    result = read_result(tmp_path / "run")
    assert result["scenario"]["curve"] is True
    assert result["totals"]["received"] == result["totals"]["expected"] > 0
    assert all(entry["connections"] >= 1 for entry in result["subscribers"])


def test_curve_run_with_a_key_folder_uses_its_subscriber_keys(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    made = run_wardcast("keys", str(keys), "--subscriber", "caregiver-3")
    assert made.returncode == 0, made.stderr
    completed = run_wardcast(
        "run",
        "--keys",
        str(keys),
        "--subscriber",
        "caregiver:3",
        "--out",
        str(tmp_path / "run"),
    )
    assert completed.returncode == 0, completed.stderr
    assert read_result(tmp_path / "run")["totals"]["dropped"] == 0


def test_curve_run_refuses_a_subscriber_missing_from_the_key_folder(
    tmp_path: Path,
) -> None:
    keys = tmp_path / "keys"
    security.create_keys(keys, ["caregiver-1"])
    completed = run_wardcast(
        "run",
        "--keys",
        str(keys),
        "--subscriber",
        "caregiver:2",
        "--out",
        str(tmp_path),
    )
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert "caregiver-2.key_secret" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_curve_subscribe_with_a_missing_key_exits_with_one_line(
    keys: Path,
) -> None:
    completed = run_wardcast(
        "subscribe", "--role", "caregiver", "--patient", "7", "--keys", str(keys)
    )
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert "caregiver-7.key_secret" in completed.stderr


@pytest.mark.parametrize(
    "command",
    [
        ("publish", "--endpoint", "tcp://0.0.0.0:5999"),
        ("publish", "--endpoint", "tcp://192.0.2.1:5999"),
        ("run", "--endpoint", "tcp://0.0.0.0:*"),
        ("run", "--endpoint", "tcp://eth0:*"),
    ],
)
def test_curve_plaintext_refuses_to_bind_a_reachable_address(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    extra = ("--out", str(tmp_path / "out")) if command[0] == "run" else ()
    completed = run_wardcast(*command, *extra)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert "refusing to publish patient data in plaintext" in completed.stderr
    assert "--insecure" in completed.stderr
    assert not (tmp_path / "out" / "result.json").exists()


def test_curve_refusal_lifts_only_for_keys_insecure_or_loopback() -> None:
    reachable = "tcp://10.0.0.1:5555"
    with pytest.raises(EndpointError):
        security.refuse_plaintext(reachable, insecure=False, curve=False)
    security.refuse_plaintext(reachable, insecure=False, curve=True)
    security.refuse_plaintext(reachable, insecure=True, curve=False)
    security.refuse_plaintext("tcp://127.0.0.1:5555", insecure=False, curve=False)
    security.refuse_plaintext("tcp://[::1]:5555", insecure=False, curve=False)


def test_curve_real_time_roles_talk_only_with_keys(keys: Path, tmp_path: Path) -> None:
    """`wardcast publish --keys` and `wardcast subscribe` as a person runs them."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "sim.cli"]
    publisher = subprocess.Popen(
        [*command, "publish", "--keys", str(keys), "--endpoint", endpoint]
        + ["--day-seconds", "0.5", "--days", "200"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        allowed = run_wardcast(
            "subscribe",
            *("--role", "caregiver", "--patient", "1", "--keys", str(keys)),
            *("--endpoint", endpoint, "--count", "2", "--max-seconds", "60"),
        )
        plaintext = run_wardcast(
            "subscribe",
            *("--role", "caregiver", "--patient", "1", "--endpoint", endpoint),
            *("--max-seconds", "3"),
        )
    finally:
        publisher.terminate()
        publisher.communicate(timeout=30)
    assert allowed.returncode == 0, allowed.stderr
    assert "received 2 updates" in allowed.stdout
    assert "Patient_1_data: Dear Caregiver" in allowed.stdout
    assert "received 0 updates" in plaintext.stdout
    assert "Dear Caregiver" not in plaintext.stdout


def test_curve_real_time_week_arrives_whole_before_the_publisher_exits(
    keys: Path,
) -> None:
    """The publisher waits for its subscriber, sends a short week at full
    speed and exits at once: its last updates must still arrive."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    publisher = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "publish", "--keys", str(keys)]
        + ["--endpoint", endpoint, "--patients", "25", "--days", "400"]
        + ["--day-seconds", "0.001", "--await-subscriptions", "1", "--hwm", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        administration = run_wardcast(
            "subscribe",
            *("--role", "administration", "--keys", str(keys), "--hwm", "0"),
            *("--endpoint", endpoint, "--count", "20000", "--max-seconds", "60"),
        )
    finally:
        out, err = publisher.communicate(timeout=60)
    assert publisher.returncode == 0, err
    assert "published 20,000 updates" in out
    assert "received 20000 updates; 0 missing" in administration.stdout
