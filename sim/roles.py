"""Who subscribes to what.

A caregiver follows one patient, a psychiatrist a handful, administration all
of them. Subscriptions are built here and only here, from patient numbers, and
every prefix ends with the topic terminator: `Patient_1_data` plus the byte
that ends a topic on the wire. A bare `Patient_1` prefix, which would also
match `Patient_10` … `Patient_19`, cannot be expressed through this module.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from sim.errors import ScenarioError
from sim.hospital import topic
from sim.wire import TOPIC_TERMINATOR

PUBLISHER_SIDE = "publisher"
SUBSCRIBER_SIDE = "subscriber"
FILTER_SIDES = (PUBLISHER_SIDE, SUBSCRIBER_SIDE)


class Role(enum.StrEnum):
    CAREGIVER = "caregiver"
    PSYCHIATRIST = "psychiatrist"
    ADMINISTRATION = "administration"


def topic_prefix(patient: int) -> bytes:
    """The exact subscription for one patient's updates."""
    return topic(patient).encode() + TOPIC_TERMINATOR


@dataclass(frozen=True, kw_only=True)
class SubscriberSpec:
    """One subscriber: a role and the patients it follows.

    `patients` is empty for administration, which follows everyone.
    `slow_us` makes the subscriber spend that long on every message it
    receives, to study a consumer that cannot keep up. `filter_side` is where
    the patients are picked out: "publisher" subscribes to each patient's
    topic, so ZeroMQ filters in the publisher; "subscriber" subscribes to
    everything and drops other patients' updates itself, to measure what
    publisher-side filtering saves.
    """

    name: str
    role: Role
    patients: tuple[int, ...] = ()
    slow_us: float = 0.0
    trace: bool = field(default=False, compare=False)
    filter_side: str = "publisher"

    def prefixes(self) -> list[bytes]:
        if self.role is Role.ADMINISTRATION or self.filters_itself():
            return [b""]
        return [topic_prefix(patient) for patient in self.patients]

    def follows_all(self) -> bool:
        return self.role is Role.ADMINISTRATION

    def filters_itself(self) -> bool:
        return self.filter_side == SUBSCRIBER_SIDE

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "role": str(self.role),
            "patients": list(self.patients),
            "slow_us": self.slow_us,
            "trace": self.trace,
            "filter_side": self.filter_side,
        }

    @classmethod
    def from_dict(cls, raw: dict) -> SubscriberSpec:
        return cls(
            name=raw["name"],
            role=Role(raw["role"]),
            patients=tuple(raw["patients"]),
            slow_us=raw.get("slow_us", 0.0),
            trace=raw.get("trace", False),
            filter_side=raw.get("filter_side", PUBLISHER_SIDE),
        )


def make_subscriber(
    role: str,
    patients: list[int] | tuple[int, ...] = (),
    *,
    name: str | None = None,
    slow_us: float = 0.0,
    trace: bool = False,
    filter_side: str = "publisher",
) -> SubscriberSpec:
    """A checked subscriber; raises ScenarioError naming what is wrong."""
    try:
        kind = Role(role)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise ScenarioError(f"unknown role {role!r}: use one of {known}") from None
    chosen = tuple(dict.fromkeys(patients))
    if kind is Role.ADMINISTRATION and chosen:
        raise ScenarioError("administration follows every patient: name no patients")
    if kind is Role.CAREGIVER and len(chosen) != 1:
        raise ScenarioError(
            f"a caregiver follows exactly one patient, got {len(chosen)}:"
            " write caregiver:N"
        )
    if kind is Role.PSYCHIATRIST and not chosen:
        raise ScenarioError(
            "a psychiatrist follows at least one patient: psychiatrist:8,9"
        )
    if slow_us < 0:
        raise ScenarioError(f"slow_us must be 0 or more, got {slow_us}")
    if filter_side not in FILTER_SIDES:
        raise ScenarioError(
            f"filter_side must be {' or '.join(FILTER_SIDES)}, got {filter_side!r}"
        )
    if name is None:
        name = str(kind) if not chosen else f"{kind}-{'-'.join(map(str, chosen[:3]))}"
        if len(chosen) > 3:
            name += f"-and-{len(chosen) - 3}-more"
    return SubscriberSpec(
        name=name,
        role=kind,
        patients=chosen,
        slow_us=slow_us,
        trace=trace,
        filter_side=filter_side,
    )


_PATIENT_LIST = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def parse_patients(text: str) -> list[int]:
    """Patient numbers from `8,9` or `10-14` or a mix of both."""
    if not _PATIENT_LIST.match(text):
        raise ScenarioError(
            f"cannot read patients {text!r}: write numbers and ranges like 8,9 or 10-14"
        )
    patients: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        low, high = int(first), int(last or first)
        if high < low:
            raise ScenarioError(
                f"patient range {part!r} runs backwards: write {high}-{low}"
            )
        patients.extend(range(low, high + 1))
    return patients


def parse_subscriber(text: str) -> SubscriberSpec:
    """A subscriber from the command line: `caregiver:3`, `psychiatrist:8,9`,
    `administration`."""
    role, _, patients = text.partition(":")
    return make_subscriber(role.strip(), parse_patients(patients) if patients else [])


def reference_subscribers() -> tuple[SubscriberSpec, ...]:
    """The six subscribers of the reference deployment."""
    return (
        make_subscriber("caregiver", [1]),
        make_subscriber("caregiver", [2]),
        make_subscriber("caregiver", [3]),
        make_subscriber("psychiatrist", [8, 9]),
        make_subscriber("psychiatrist", range(10, 15)),
        make_subscriber("administration"),
    )


def unique_names(specs: list[SubscriberSpec]) -> list[SubscriberSpec]:
    """The same subscribers, renamed where two share a name."""
    seen: dict[str, int] = {}
    renamed = []
    for spec in specs:
        count = seen.get(spec.name, 0)
        seen[spec.name] = count + 1
        if count:
            spec = SubscriberSpec(
                name=f"{spec.name}#{count + 1}",
                role=spec.role,
                patients=spec.patients,
                slow_us=spec.slow_us,
                trace=spec.trace,
                filter_side=spec.filter_side,
            )
        renamed.append(spec)
    return renamed
