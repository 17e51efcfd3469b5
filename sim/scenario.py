"""Scenarios: every setting of a run, from defaults, a TOML file and options.

A scenario file holds the same settings as the options of `wardcast run`,
under the same names with underscores, and a `[[subscriber]]` table per
subscriber (or group of identical subscribers):

    patients = 100
    days = 7
    rate = "max"            # updates per second, or "max"; absent: the clock
    [[subscriber]]
    role = "psychiatrist"
    patients = "8-12"       # or a list: [8, 9, 10, 11, 12]
    count = 2               # two identical subscribers

Unknown keys and bad values are refused with the key's name, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.endpoints import parse as parse_endpoint
from sim.errors import ScenarioError
from sim.hospital import DEFAULT_START_DATE, MAX_PATIENTS, Hospital
from sim.roles import (
    SubscriberSpec,
    make_subscriber,
    parse_patients,
    reference_subscribers,
    unique_names,
)
from sim.wire import TEXT_OFFSET, minimum_message_bytes

DEFAULT_ENDPOINT = "tcp://127.0.0.1:*"
# A simulated day lasts a tenth of a second by default: a week of the
# reference hospital in 0.7 s, with start-up the whole run stays in seconds.
DEFAULT_DAY_SECONDS = 0.1
# ZeroMQ's own default high-water mark, so an untouched run behaves as a
# deployment with default sockets would.
DEFAULT_HWM = 1000
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """Every setting one run uses; recorded whole in its result."""

    name: str = "reference-week"
    patients: int = 25
    days: int = 7
    updates_per_day: int = 2
    start_date: dt.date = DEFAULT_START_DATE
    seed: int = 1
    rate: float | None = None  # updates/s; math.inf is "max"; None follows the clock
    day_seconds: float = DEFAULT_DAY_SECONDS
    message_bytes: int = 0  # 0: the smallest size that holds every update
    hwm: int = DEFAULT_HWM
    sndbuf: int = 0  # kernel socket buffers in bytes; 0 keeps the OS default
    rcvbuf: int = 0
    subscribers: tuple[SubscriberSpec, ...] = field(
        default_factory=reference_subscribers
    )
    subscribers_per_process: int = 1
    endpoint: str = DEFAULT_ENDPOINT
    drain_quiet_seconds: float = 0.5
    drain_timeout_seconds: float = 30.0
    start_timeout_seconds: float = 60.0
    # CURVE encryption; `keys` is a folder made by `wardcast keys`, or empty
    # for keys made afresh for the run (see sim.security). `keys` is ignored
    # while `curve` is off, so a sweep can turn CURVE on and off as an axis.
    curve: bool = False
    keys: str = ""
    # ZMQ_MAXMSGSIZE of every subscriber: 0 is the run's frame size, so any
    # bigger frame ends that subscriber's session; -1 is unlimited.
    max_message_bytes: int = 0
    # Liveness (ZeroMQ heartbeats on every data socket; 0 leaves them off) and
    # the silence a subscriber reports (0: three slot intervals, at least
    # half a second).
    heartbeat_ivl_ms: int = 0
    heartbeat_timeout_ms: int = 0
    heartbeat_ttl_ms: int = 0
    silence_seconds: float = 0.0
    # Deployment and faults (see sim.faults); the defaults inject nothing.
    # Times are seconds after the publisher starts sending.
    namespaces: bool = False
    kill_subscriber: str = ""
    kill_subscriber_at_seconds: float = 0.0
    restart_publisher_at_seconds: float = 0.0
    link_cut_at_seconds: float = 0.0
    link_cut_seconds: float = 0.0
    packet_loss: float = 0.0
    delay_ms: float = 0.0
    delay_proxy: bool = False

    @property
    def messages(self) -> int:
        return self.patients * self.days * self.updates_per_day

    @property
    def paced_by(self) -> str:
        if self.rate is None:
            return "clock"
        return "max" if math.isinf(self.rate) else "rate"

    def hospital(self) -> Hospital:
        return Hospital(
            patients=self.patients, seed=self.seed, start_date=self.start_date
        )

    def replace(self, **changes: Any) -> Scenario:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        settings = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        settings["start_date"] = self.start_date.isoformat()
        settings["rate"] = rate_label(self.rate)
        settings["subscribers"] = [spec.to_dict() for spec in self.subscribers]
        settings["messages"] = self.messages
        return settings

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Scenario:
        settings = {
            f.name: raw[f.name] for f in dataclasses.fields(cls) if f.name in raw
        }
        settings["start_date"] = dt.date.fromisoformat(raw["start_date"])
        settings["rate"] = parse_rate(raw["rate"]) if raw["rate"] != "clock" else None
        settings["subscribers"] = tuple(
            SubscriberSpec.from_dict(spec) for spec in raw["subscribers"]
        )
        return cls(**settings)


def rate_label(rate: float | None) -> float | str:
    if rate is None:
        return "clock"
    return "max" if math.isinf(rate) else rate


def parse_rate(value: Any) -> float:
    """Updates per second from a number or "max"."""
    if isinstance(value, str):
        if value.strip().lower() == "max":
            return math.inf
        try:
            value = float(value)
        except ValueError:
            raise ScenarioError(
                f"rate {value!r} is not a number: give updates per second or 'max'"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ScenarioError(
            f"rate must be above 0 updates per second or 'max', got {value!r}"
        )
    return float(value)


def resolve(scenario: Scenario) -> Scenario:
    """Check every setting and fill in the derived ones; raises ScenarioError."""
    _check_counts(scenario)
    _check_times(scenario)
    parse_endpoint(scenario.endpoint)
    if not scenario.subscribers:
        raise ScenarioError("a run needs at least one subscriber: add --subscriber")
    for spec in scenario.subscribers:
        missing = [p for p in spec.patients if not 1 <= p <= scenario.patients]
        if missing:
            raise ScenarioError(
                f"subscriber {spec.name} follows patient {missing[0]}, but the hospital"
                f" has patients 1 to {scenario.patients}: raise --patients or pick"
                " another patient"
            )
    needed = minimum_message_bytes(scenario.hospital().longest_update())
    size = scenario.message_bytes or needed
    if size < needed:
        raise ScenarioError(
            f"message_bytes {size} is too small for these updates:"
            f" use at least {needed}"
        )
    if size > MAX_MESSAGE_BYTES:
        raise ScenarioError(f"message_bytes must be at most {MAX_MESSAGE_BYTES:,}")
    size = minimum_message_bytes(size - TEXT_OFFSET)
    _check_security(scenario, size)
    resolved = scenario.replace(
        message_bytes=size, subscribers=tuple(unique_names(list(scenario.subscribers)))
    )
    from sim.faults import check_faults

    check_faults(resolved)
    return resolved


def _check_counts(scenario: Scenario) -> None:
    positive = {
        "patients": (scenario.patients, MAX_PATIENTS),
        "days": (scenario.days, 100_000),
        "updates_per_day": (scenario.updates_per_day, 86_400),
        "subscribers_per_process": (scenario.subscribers_per_process, 100_000),
    }
    for key, (value, highest) in positive.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 1 <= value <= highest
        ):
            raise ScenarioError(
                f"{key} must be a whole number from 1 to {highest:,}, got {value!r}"
            )
    for key in ("hwm", "sndbuf", "rcvbuf", "seed", "message_bytes"):
        value = getattr(scenario, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ScenarioError(
                f"{key} must be a whole number, 0 or more, got {value!r}"
            )


def _check_times(scenario: Scenario) -> None:
    for key in (
        "day_seconds",
        "drain_quiet_seconds",
        "drain_timeout_seconds",
        "start_timeout_seconds",
    ):
        value = getattr(scenario, key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 < value < math.inf
        ):
            raise ScenarioError(
                f"{key} must be a number of seconds above 0, got {value!r}"
            )
    if scenario.rate is not None:
        parse_rate(scenario.rate)


def _check_security(scenario: Scenario, message_bytes: int) -> None:
    if not isinstance(scenario.curve, bool):
        raise ScenarioError(f"curve must be true or false, got {scenario.curve!r}")
    if not isinstance(scenario.keys, str):
        raise ScenarioError(f"keys must be a folder name, got {scenario.keys!r}")
    limit = scenario.max_message_bytes
    if (
        isinstance(limit, bool)
        or not isinstance(limit, int)
        or not (limit in (-1, 0) or limit >= message_bytes)
    ):
        raise ScenarioError(
            f"max_message_bytes must be -1 (unlimited), 0 (the frame size) or at"
            f" least the frame size {message_bytes}, got {limit!r}"
        )


# Scenario-file keys that are not plain fields of Scenario.
_SUBSCRIBER_KEYS = {
    "role",
    "patients",
    "name",
    "count",
    "slow_us",
    "trace",
    "filter_side",
}
_FILE_KEYS = {f.name for f in dataclasses.fields(Scenario)} - {"subscribers"} | {
    "subscriber"
}


def load(
    path: Path, *, extra_keys: frozenset[str] = frozenset()
) -> tuple[Scenario, dict]:
    """A scenario from a TOML file, and the file's extra top-level tables
    (those named in `extra_keys`, such as a sweep's) for the caller."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ScenarioError(
            f"scenario file {path} does not exist: check the path"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(f"cannot read scenario file {path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(
            f"scenario file {path} is not valid TOML: {error}"
        ) from None
    extras = {key: raw.pop(key) for key in list(raw) if key in extra_keys}
    return from_mapping(raw, source=str(path), default_name=path.stem), extras


def from_mapping(raw: dict, *, source: str, default_name: str = "scenario") -> Scenario:
    unknown = sorted(set(raw) - _FILE_KEYS)
    if unknown:
        raise ScenarioError(
            f"unknown key {unknown[0]!r} in {source}: known keys are "
            + ", ".join(sorted(_FILE_KEYS))
        )
    settings = dict(raw)
    for key in ("name", "endpoint", "keys"):
        if key in settings and not isinstance(settings[key], str):
            raise ScenarioError(
                f"{key} in {source} must be a string, got {settings[key]!r}"
            )
    settings.setdefault("name", default_name)
    if "rate" in settings:
        settings["rate"] = parse_rate(settings["rate"])
    if "start_date" in settings:
        settings["start_date"] = _date(settings["start_date"], source)
    if "subscriber" in settings:
        settings["subscribers"] = tuple(
            _subscribers(settings.pop("subscriber"), source)
        )
    return Scenario(**settings)


def _date(value: Any, source: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ScenarioError(
            f"start_date in {source} must be a date like 2024-05-11"
        ) from None


def _subscribers(tables: Any, source: str) -> list[SubscriberSpec]:
    if not isinstance(tables, list):
        raise ScenarioError(f"subscriber in {source} must be [[subscriber]] tables")
    specs: list[SubscriberSpec] = []
    for table in tables:
        if not isinstance(table, dict):
            raise ScenarioError(f"subscriber in {source} must be [[subscriber]] tables")
        unknown = sorted(set(table) - _SUBSCRIBER_KEYS)
        if unknown:
            raise ScenarioError(
                f"unknown key {unknown[0]!r} in a [[subscriber]] of {source}:"
                " known keys are " + ", ".join(sorted(_SUBSCRIBER_KEYS))
            )
        if "role" not in table:
            raise ScenarioError(
                f"a [[subscriber]] in {source} has no role: add role = ..."
            )
        patients = table.get("patients", [])
        if isinstance(patients, str):
            patients = parse_patients(patients)
        elif isinstance(patients, int) and not isinstance(patients, bool):
            patients = [patients]
        elif not (
            isinstance(patients, list)
            and all(isinstance(p, int) and not isinstance(p, bool) for p in patients)
        ):
            raise ScenarioError(
                f"patients in a [[subscriber]] of {source} must be numbers or '8-12'"
            )
        count = table.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ScenarioError(
                f"count in a [[subscriber]] of {source} must be 1 or more"
            )
        _check_subscriber_types(table, source)
        spec = make_subscriber(
            str(table["role"]),
            patients,
            name=table.get("name"),
            slow_us=float(table.get("slow_us", 0.0)),
            trace=bool(table.get("trace", False)),
            filter_side=str(table.get("filter_side", "publisher")),
        )
        specs.extend([spec] * count)
    return specs


def _check_subscriber_types(table: dict, source: str) -> None:
    """The types of a [[subscriber]]'s optional keys, before anything uses them."""
    name = table.get("name")
    if name is not None and not (isinstance(name, str) and name):
        raise ScenarioError(
            f"name in a [[subscriber]] of {source} must be a non-empty string"
        )
    slow_us = table.get("slow_us", 0.0)
    if (
        isinstance(slow_us, bool)
        or not isinstance(slow_us, int | float)
        or not math.isfinite(slow_us)
    ):
        raise ScenarioError(
            f"slow_us in a [[subscriber]] of {source} must be a number of"
            f" microseconds, got {slow_us!r}"
        )
    if not isinstance(table.get("trace", False), bool):
        raise ScenarioError(
            f"trace in a [[subscriber]] of {source} must be true or false"
        )
