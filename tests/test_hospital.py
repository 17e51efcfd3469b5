"""The hospital's patients, updates and topics."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from sim.hospital import MAX_PATIENTS, Hospital, topic
from sim.scenario import Scenario, resolve
from sim.schedule import frame_chunks, slots


def week_texts(seed: int, patients: int = 25) -> list[bytes]:
    scenario = resolve(Scenario(patients=patients, seed=seed))
    return [
        bytes(t) for chunk in frame_chunks(scenario, run_id=1) for t in chunk["text"]
    ]


def test_same_seed_gives_the_same_week_byte_for_byte():
    assert week_texts(seed=7) == week_texts(seed=7)


def test_another_seed_gives_another_week():
    assert week_texts(seed=7) != week_texts(seed=8)


def test_update_reads_like_the_hospitals_message_without_its_bugs():
    hospital = Hospital(patients=25, seed=1)
    text = hospital.update_text(1, day=0, slot_time=dt.datetime(2024, 5, 11, 12))
    assert text.startswith(
        "Dear Caregiver, on 2024-05-11 12:00:00: your patient Patient_1 received "
    )
    assert text.count("2024-05-11") == 1
    assert "  " not in text
    assert "please call our facility at" in text


def test_a_week_has_two_updates_per_patient_per_day_at_midnight_and_noon():
    scenario = resolve(Scenario())
    times = [slot.when for slot in slots(scenario)]
    assert len(times) == 14
    assert {t.hour for t in times} == {0, 12}
    frames = np.concatenate(list(frame_chunks(scenario, run_id=1)))
    assert len(frames) == 350
    assert np.bincount(frames["patient"]).tolist() == [0] + [14] * 25


def test_topics_are_named_after_patients():
    assert topic(1) == "Patient_1_data"
    assert topic(250) == "Patient_250_data"


@pytest.mark.parametrize("patients", [0, -1, MAX_PATIENTS + 1])
def test_patient_count_outside_one_to_a_million_is_refused(patients):
    with pytest.raises(ValueError, match="patients must be 1 to 1,000,000"):
        Hospital(patients=patients, seed=1)


def test_a_million_patients_can_be_rendered():
    hospital = Hospital(patients=MAX_PATIENTS, seed=1)
    texts = hospital.render(dt.datetime(2024, 5, 11), 0, np.array([1, MAX_PATIENTS]))
    assert b"your patient Patient_1000000 received" in texts[1]
    assert len(texts[1]) <= hospital.longest_update()
