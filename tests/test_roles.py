"""Roles and their subscriptions, including the Patient_1 / Patient_10 trap."""

from __future__ import annotations

import pytest

from sim.errors import ScenarioError
from sim.roles import (
    Role,
    parse_patients,
    parse_subscriber,
    reference_subscribers,
    topic_prefix,
)
from sim.wire import topic_fields


def matching_patients(prefixes: list[bytes], patients: int) -> set[int]:
    """Patients whose frames a ZeroMQ prefix filter would let through."""
    fields = topic_fields(patients)
    # On the wire the topic field is NUL-padded to its full width.
    padded = [bytes(field).ljust(24, b"\x00") for field in fields]
    return {
        number
        for number in range(1, patients + 1)
        if any(padded[number].startswith(prefix) for prefix in prefixes)
    }


def test_caregiver_subscription_matches_only_its_own_patient_among_a_thousand():
    spec = parse_subscriber("caregiver:1")
    assert matching_patients(spec.prefixes(), 1000) == {1}


def test_the_naive_prefix_would_have_matched_patients_ten_to_nineteen():
    naive = matching_patients([b"Patient_1"], 120)
    assert {10, 19, 100, 119} <= naive
    assert naive != {1}


def test_psychiatrist_subscriptions_match_exactly_their_patients():
    spec = parse_subscriber("psychiatrist:1,10,100")
    assert matching_patients(spec.prefixes(), 150) == {1, 10, 100}


def test_administration_follows_everyone():
    spec = parse_subscriber("administration")
    assert spec.prefixes() == [b""]
    assert matching_patients(spec.prefixes(), 30) == set(range(1, 31))


def test_every_prefix_ends_with_the_topic_terminator():
    assert topic_prefix(7) == b"Patient_7_data\x00"


def test_reference_deployment_has_six_subscribers():
    specs = reference_subscribers()
    assert [s.role for s in specs].count(Role.CAREGIVER) == 3
    assert [s.patients for s in specs if s.role is Role.PSYCHIATRIST] == [
        (8, 9),
        (10, 11, 12, 13, 14),
    ]
    assert specs[-1].role is Role.ADMINISTRATION


def test_patient_lists_accept_numbers_and_ranges():
    assert parse_patients("8,9") == [8, 9]
    assert parse_patients("10-12,20") == [10, 11, 12, 20]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nurse:1", "unknown role 'nurse'"),
        ("caregiver", "a caregiver follows exactly one patient"),
        ("caregiver:1,2", "a caregiver follows exactly one patient"),
        ("psychiatrist", "a psychiatrist follows at least one patient"),
        ("administration:3", "administration follows every patient"),
        ("caregiver:x", "cannot read patients 'x'"),
        ("psychiatrist:9-3", "runs backwards"),
    ],
)
def test_bad_subscriber_specs_are_refused_with_the_fix(text, message):
    with pytest.raises(ScenarioError, match=message):
        parse_subscriber(text)
