"""CURVE encryption and the allow-list of subscribers a publisher serves.

A key folder, made by `wardcast keys DIR`, holds one certificate pair for the
publisher and one per subscriber:

    DIR/publisher.key                the publisher's public key (give to
                                     every subscriber)
    DIR/publisher.key_secret         the publisher's secret key (publisher only)
    DIR/subscribers/NAME.key         a subscriber's public key: the allow-list
    DIR/subscribers/NAME.key_secret  that subscriber's secret key (it alone)

The publisher is a CURVE server. A ZAP handler (pyzmq's ThreadAuthenticator)
admits a subscriber only if its public key is one of `DIR/subscribers/*.key`;
removing a `.key` file revokes that subscriber at the next connection. A
subscriber without a key, with a key not on the list, or in plaintext never
completes the handshake and so receives nothing.

Where patient data may leave the machine (a bind address other than loopback)
the publisher refuses plaintext unless told `--insecure` in so many words.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from sim import endpoints
from sim.errors import EndpointError, UserError

logger = logging.getLogger(__name__)

PUBLISHER_NAME = "publisher"
SUBSCRIBERS_FOLDER = "subscribers"
# libzmq applies ZMQ_MAXMSGSIZE to the frame as it arrives, which under CURVE
# is a MESSAGE command wrapping the update: a length byte and "MESSAGE" (8),
# a short nonce (8), the Poly1305 tag (16) and a flags byte (1). Measured: a
# limit of frame size + 32 ends every session, + 33 delivers every update.
CURVE_MESSAGE_OVERHEAD = 33
# ZAP domain every wardcast socket uses; the authenticator applies the
# allow-list to this domain and to no other.
ZAP_DOMAIN = "wardcast"


class KeyFileError(UserError):
    """A key folder or key file that is missing or unreadable."""


@dataclass(frozen=True)
class KeyPair:
    """A CURVE key pair in Z85, the form ZeroMQ's socket options take."""

    public: bytes
    secret: bytes

    def __repr__(self) -> str:  # never print a secret key in a log or traceback
        return f"KeyPair(public={self.public.decode()!r}, secret=...)"


def create_keys(folder: Path, subscriber_names: list[str]) -> list[Path]:
    """Certificates for a publisher and each named subscriber, in `folder`."""
    clients = folder / SUBSCRIBERS_FOLDER
    try:
        clients.mkdir(parents=True, exist_ok=True)
        made = [_create_pair(folder, PUBLISHER_NAME)]
        made += [_create_pair(clients, name) for name in subscriber_names]
    except OSError as error:
        raise UserError(
            f"cannot write keys in {folder}: {error.strerror}; choose another folder"
        ) from None
    return made


def _create_pair(folder: Path, name: str) -> Path:
    if (folder / f"{name}.key_secret").exists():
        raise UserError(
            f"{folder / name}.key_secret already exists: remove it or choose"
            " another folder, so no key in use is overwritten"
        )
    public, secret = zmq.auth.create_certificates(folder, name)
    Path(secret).chmod(0o600)
    return Path(public)


def load_pair(folder: Path, name: str) -> KeyPair:
    """The key pair `name` (publisher or a subscriber) from a key folder."""
    base = folder if name == PUBLISHER_NAME else folder / SUBSCRIBERS_FOLDER
    path = base / f"{name}.key_secret"
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as error:
        raise KeyFileError(
            f"no usable secret key for {name} at {path} ({error}): make keys with"
            f" `wardcast keys {folder}` or give the right --keys folder"
        ) from None
    if secret is None:
        raise KeyFileError(
            f"{path} holds no secret key: make keys with `wardcast keys`"
        )
    return KeyPair(public, secret)


def load_publisher_public(folder: Path) -> bytes:
    path = folder / f"{PUBLISHER_NAME}.key"
    try:
        public, _ = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as error:
        raise KeyFileError(
            f"no publisher public key at {path} ({error}): copy publisher.key from"
            " the publisher's key folder"
        ) from None
    return public


class CurveServer:
    """A publisher socket's CURVE keys and the ZAP handler guarding it."""

    def __init__(self, context: zmq.Context, folder: Path) -> None:
        self.folder = folder
        self.keys = load_pair(folder, PUBLISHER_NAME)
        allowed = folder / SUBSCRIBERS_FOLDER
        if not allowed.is_dir():
            raise KeyFileError(
                f"no allow-list folder {allowed}: make keys with `wardcast keys`"
            )
        self.authenticator = ThreadAuthenticator(context, log=logger)
        self.authenticator.start()
        self.authenticator.configure_curve(domain=ZAP_DOMAIN, location=str(allowed))
        logger.info(
            "CURVE on; %d subscriber keys allowed from %s",
            len(list(allowed.glob("*.key"))),
            allowed,
        )

    def apply(self, socket: zmq.Socket) -> None:
        """Make `socket` a CURVE server; call before it binds."""
        socket.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN.encode())
        socket.setsockopt(zmq.CURVE_SERVER, 1)
        socket.setsockopt(zmq.CURVE_PUBLICKEY, self.keys.public)
        socket.setsockopt(zmq.CURVE_SECRETKEY, self.keys.secret)

    def stop(self) -> None:
        self.authenticator.stop()


def apply_client(socket: zmq.Socket, folder: Path, name: str) -> None:
    """Make `socket` a CURVE client as subscriber `name`; call before it connects."""
    keys = load_pair(folder, name)
    socket.setsockopt(zmq.CURVE_SERVERKEY, load_publisher_public(folder))
    socket.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    socket.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)


def refuse_plaintext(endpoint: str, *, insecure: bool, curve: bool) -> None:
    """Patient data never leaves this machine unencrypted unless told to."""
    if curve or insecure or endpoints.is_loopback(endpoint):
        return
    raise EndpointError(
        f"refusing to publish patient data in plaintext on {endpoint}, which other"
        " machines can reach: give CURVE keys (--keys DIR, made by `wardcast keys"
        " DIR`), bind a loopback address, or add --insecure on a private network"
    )


class RunKeys:
    """Keys for one measured run: the scenario's folder, or a temporary one made
    for the run's own subscribers and removed afterwards."""

    def __init__(self, folder: str, subscriber_names: list[str]) -> None:
        self._temporary = ""
        if folder:
            self.folder = Path(folder)
            return
        self._temporary = tempfile.mkdtemp(prefix="wardcast-keys-")
        self.folder = Path(self._temporary)
        create_keys(self.folder, subscriber_names)

    def remove(self) -> None:
        if self._temporary:
            shutil.rmtree(self._temporary, ignore_errors=True)
