"""Network namespaces on this host: a publisher and its subscribers on
separate network stacks, joined by veth pairs and a bridge, as if on
separate machines.

    wcnTOKEN-sw         the switch: bridge wcnTOKEN-br and one port per
                        namespace below, plus one for the root namespace
    root namespace      veth wcnTOKENhroot, address 10.213.N.1/24: the
                        harness's control ROUTER binds here, reachable from
                        every namespace through the bridge
    wcnTOKEN-pub        the publisher, 10.213.N.2, data port 5555
    wcnTOKEN-s0, -s1 …  one namespace per subscriber process, 10.213.N.10+

Every name starts with `wcn` and a random token, so two topologies made at
once never collide and leftovers from a killed run can be found by prefix
(`remove_leftovers`). The /24 is chosen under a lock from 10.213.0.0/16
among those no interface of the root namespace uses yet. Interface names
stay within Linux's 15 characters.

Why the bridge has a namespace of its own: a bridge in the root namespace
passes its traffic through the root's iptables FORWARD chain whenever
`br_netfilter` is loaded, and a Docker engine loads it and sets FORWARD's
policy to DROP, which silently cuts every namespace off from the others. In
a namespace of its own the bridge meets an empty firewall, and the host's
rules are left untouched. The root namespace talks to the bridge as one more
host, so its traffic is local (INPUT/OUTPUT), never forwarded.

Removal is guaranteed: the topology is a context manager, registers itself
with atexit, and turns SIGTERM into SystemExit (in the main thread) so the
`with` block unwinds; removing twice is harmless.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import ipaddress
import logging
import os
import secrets
import shutil
import signal
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import RunError, UserError

logger = logging.getLogger(__name__)

PREFIX = "wcn"
# A /16 of RFC 1918 space that only these namespaces use; one /24 of it per
# topology, so up to 256 topologies can exist at once.
SUPERNET = ipaddress.ip_network("10.213.0.0/16")
# The publisher's data port inside its own namespace: nothing else listens
# there, so a fixed port never collides, and a restarted publisher binds the
# same endpoint again.
DATA_PORT = 5555
# Where the delaying proxy listens, in the publisher's namespace.
PROXY_PORT = 5556
FIRST_SUBSCRIBER_HOST = 10
LOCK_PATH = Path("/run/wardcast-netns.lock")
IP_TIMEOUT_S = 20.0


def unavailable_reason() -> str:
    """Why namespaces cannot be made here, or "" when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    return ""


def run_ip(*args: str, namespace: str = "", check: bool = True) -> str:
    """Run `ip ARGS` (inside `namespace` if given); its standard output."""
    command = ["ip", *(["-n", namespace] if namespace else []), *args]
    return _run(command, check=check)


def run_in(namespace: str, command: Sequence[str], *, stdin: str = "") -> str:
    """Run a command inside a namespace; its standard output."""
    return _run(["ip", "netns", "exec", namespace, *command], stdin=stdin)


def _run(command: list[str], *, check: bool = True, stdin: str = "") -> str:
    logger.debug("%s", " ".join(command))
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=IP_TIMEOUT_S,
    )
    if check and completed.returncode != 0:
        raise RunError(
            f"`{' '.join(command)}` failed: {completed.stderr.strip() or 'no message'}"
        )
    return completed.stdout


@dataclass(frozen=True)
class Host:
    """One namespace on the bridge."""

    name: str  # short: "pub", "s0"
    namespace: str
    address: str
    host_veth: str  # the bridge's end, in the root namespace
    inner_veth: str  # the namespace's end


@dataclass
class Topology:
    """A bridge and one namespace per host; made by `create`, removed by
    `remove` (or the `with` block)."""

    subscriber_hosts: int
    token: str = field(default_factory=lambda: secrets.token_hex(3)[:5])
    subnet: ipaddress.IPv4Network | None = None
    hosts: dict[str, Host] = field(default_factory=dict)
    processes: list[subprocess.Popen] = field(default_factory=list)
    _made: list[str] = field(default_factory=list)
    _root_veth: str = ""
    _removed: bool = False

    @property
    def prefix(self) -> str:
        return f"{PREFIX}{self.token}"

    @property
    def switch(self) -> str:
        """The namespace that holds the bridge."""
        return f"{self.prefix}-sw"

    @property
    def bridge(self) -> str:
        return f"{self.prefix}-br"

    @property
    def bridge_address(self) -> str:
        assert self.subnet is not None
        return str(self.subnet.network_address + 1)

    @property
    def publisher(self) -> Host:
        return self.hosts["pub"]

    def subscriber_host(self, index: int) -> Host:
        return self.hosts[f"s{index % self.subscriber_hosts}"]

    @property
    def data_endpoint(self) -> str:
        return f"tcp://{self.publisher.address}:{DATA_PORT}"

    @property
    def proxy_endpoint(self) -> str:
        return f"tcp://{self.publisher.address}:{PROXY_PORT}"

    @property
    def control_endpoint(self) -> str:
        return f"tcp://{self.bridge_address}:*"

    # -- making and removing ------------------------------------------------

    def __enter__(self) -> Topology:
        self.create()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def create(self) -> Topology:
        reason = unavailable_reason()
        if reason:
            raise UserError(f"cannot make network namespaces: {reason}")
        atexit.register(self.remove)
        _terminate_cleanly_on_sigterm()
        try:
            self._add_namespace(self.switch)
            run_ip("link", "add", self.bridge, "type", "bridge", namespace=self.switch)
            run_ip("link", "set", self.bridge, "up", namespace=self.switch)
            with _address_lock():
                self.subnet = _free_subnet()
                self._add_root_port()
            self._add_host("pub", 2)
            for index in range(self.subscriber_hosts):
                self._add_host(f"s{index}", FIRST_SUBSCRIBER_HOST + index)
        except BaseException:
            self.remove()
            raise
        logger.info(
            "made %d namespaces on %s (%s)", len(self.hosts), self.bridge, self.subnet
        )
        return self

    def _add_namespace(self, namespace: str) -> None:
        run_ip("netns", "add", namespace)
        self._made.append(namespace)
        run_ip("link", "set", "lo", "up", namespace=namespace)

    def _add_root_port(self) -> None:
        """The root namespace's own port on the bridge, for the harness."""
        root_veth, switch_end = f"{self.prefix}hroot", f"{self.prefix}nroot"
        run_ip(
            "link", "add", root_veth, "type", "veth",
            "peer", "name", switch_end, "netns", self.switch,
        )  # fmt: skip
        self._root_veth = root_veth
        run_ip("addr", "add", f"{self.bridge_address}/24", "dev", root_veth)
        run_ip("link", "set", root_veth, "up")
        self._plug(switch_end)

    def _add_host(self, name: str, host_number: int) -> None:
        assert self.subnet is not None
        namespace = f"{self.prefix}-{name}"
        host = Host(
            name=name,
            namespace=namespace,
            address=str(self.subnet.network_address + host_number),
            host_veth=f"{self.prefix}h{name}",
            inner_veth=f"{self.prefix}n{name}",
        )
        self._add_namespace(namespace)
        self.hosts[name] = host
        run_ip(
            "link", "add", host.host_veth, "type", "veth",
            "peer", "name", host.inner_veth, "netns", namespace,
            namespace=self.switch,
        )  # fmt: skip
        self._plug(host.host_veth)
        run_ip(
            "addr", "add", f"{host.address}/24", "dev", host.inner_veth,
            namespace=namespace,
        )  # fmt: skip
        run_ip("link", "set", host.inner_veth, "up", namespace=namespace)

    def _plug(self, port: str) -> None:
        run_ip("link", "set", port, "master", self.bridge, "up", namespace=self.switch)

    def remove(self) -> None:
        """Stop what was started in the namespaces and remove them; safe to
        call twice."""
        if self._removed:
            return
        self._removed = True
        for process in self.processes:
            _stop(process)
        for namespace in self._made:
            _kill_inside(namespace)
        # Deleting a namespace deletes the veth ends inside it, and with them
        # their peers: the bridge, its ports and the root's port all go.
        for namespace in reversed(self._made):
            run_ip("netns", "del", namespace, check=False)
        if self._root_veth:
            run_ip("link", "del", self._root_veth, check=False)
        atexit.unregister(self.remove)
        logger.info("removed namespaces %s-*", self.prefix)

    # -- running things inside ------------------------------------------------

    def launcher(self, worker_id: str) -> list[str]:
        """The command prefix that runs a harness worker in its namespace:
        every publisher in the publisher's, subscriber process K in the
        K-th subscriber namespace (wrapping round when there are fewer)."""
        if worker_id.startswith("publisher"):
            host = self.publisher
        else:
            host = self.subscriber_host(int(worker_id.rsplit("-", 1)[1]))
        return ["ip", "netns", "exec", host.namespace]

    def start(self, host: Host, command: Sequence[str]) -> subprocess.Popen:
        """A long-running process inside a namespace, stopped by `remove`."""
        process = subprocess.Popen(
            ["ip", "netns", "exec", host.namespace, *command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.processes.append(process)
        return process

    def set_link(self, host: Host, up: bool) -> None:
        """Plug or unplug a host's cable: the bridge's end of its veth."""
        state = "up" if up else "down"
        run_ip("link", "set", host.host_veth, state, namespace=self.switch)


def namespace_of(pid: int) -> str:
    """The named namespace a process runs in, as the kernel sees it."""
    return run_ip("netns", "identify", str(pid), check=False).strip()


def _kill_inside(namespace: str) -> None:
    """Kill whatever still runs in a namespace this module made: deleting a
    namespace does not end its processes, and nothing else lives there."""
    for pid in run_ip("netns", "pids", namespace, check=False).split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout:
        process.stdout.close()


@contextlib.contextmanager
def _address_lock():
    """Serialise choosing a subnet among topologies made at the same time."""
    LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_PATH, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _free_subnet() -> ipaddress.IPv4Network:
    used = set()
    for line in run_ip("-o", "-4", "addr", "show").splitlines():
        for word in line.split():
            if "/" in word and word[0].isdigit():
                used.add(ipaddress.ip_interface(word).network)
    start = secrets.randbelow(256)
    candidates = list(SUPERNET.subnets(new_prefix=24))
    for offset in range(len(candidates)):
        subnet = candidates[(start + offset) % len(candidates)]
        if not any(subnet.overlaps(network) for network in used):
            return subnet
    raise RunError(f"every /24 of {SUPERNET} is in use: remove leftover namespaces")


def leftovers() -> tuple[list[str], list[str]]:
    """(namespaces, links) whose names carry the wardcast prefix."""
    namespaces = [
        line.split()[0]
        for line in run_ip("netns", "list", check=False).splitlines()
        if line.startswith(PREFIX)
    ]
    links = []
    for line in run_ip("-o", "link", "show", check=False).splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(PREFIX):
            links.append(name)
    return namespaces, links


def remove_leftovers(token: str = "") -> int:
    """Remove namespaces and links left by runs that could not clean up
    (their names start with `wcn` + `token`); how many were removed."""
    namespaces, _ = leftovers()
    wanted = PREFIX + token
    removed = 0
    for namespace in namespaces:
        if namespace.startswith(wanted):
            _kill_inside(namespace)
            run_ip("netns", "del", namespace, check=False)
            removed += 1
    for link in leftovers()[1]:
        if link.startswith(wanted):
            run_ip("link", "del", link, check=False)
            removed += 1
    return removed


def _terminate_cleanly_on_sigterm() -> None:
    """Make SIGTERM unwind `with` blocks (and so remove namespaces) instead of
    ending the process where it stands; only where nobody else handles it."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_system_exit)


def _raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


# Packet loss is drawn per packet by nftables' `numgen random` against this
# many buckets, so a rate is honoured to 0.01 %.
LOSS_BUCKETS = 10_000


def loss_table(topology: Topology) -> str:
    return f"{topology.prefix}_loss"


def drop_packets(topology: Topology, host: Host, port: int, rate: float) -> None:
    """Drop `rate` of the TCP packets to and from `port` inside `host`'s
    namespace, counting each one dropped. Only the data port is touched, so
    the control channel (another port) still gets through."""
    threshold = round(rate * LOSS_BUCKETS)
    rule = f"numgen random mod {LOSS_BUCKETS} < {threshold} counter name dropped drop"
    table = loss_table(topology)
    ruleset = f"""
table inet {table} {{
  counter dropped {{ }}
  chain outgoing {{
    type filter hook output priority 0; policy accept;
    oifname "{host.inner_veth}" tcp sport {port} {rule}
    oifname "{host.inner_veth}" tcp dport {port} {rule}
  }}
  chain incoming {{
    type filter hook input priority 0; policy accept;
    iifname "{host.inner_veth}" tcp dport {port} {rule}
    iifname "{host.inner_veth}" tcp sport {port} {rule}
  }}
}}
"""
    run_in(host.namespace, ["nft", "-f", "-"], stdin=ruleset)


def dropped_packets(topology: Topology, host: Host) -> int:
    """How many packets the loss rule has dropped so far."""
    listing = run_in(
        host.namespace,
        ["nft", "list", "counter", "inet", loss_table(topology), "dropped"],
    )
    words = listing.split()
    return int(words[words.index("packets") + 1])


def stop_dropping(topology: Topology, host: Host) -> None:
    _run(
        ["ip", "netns", "exec", host.namespace, "nft", "delete", "table", "inet"]
        + [loss_table(topology)],
        check=False,
    )
