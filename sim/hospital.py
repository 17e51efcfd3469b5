"""The hospital: synthetic patients and the text of their updates.

Every patient gets two updates a day by default (midnight and noon). What an
update says (medication, dose, symptom, mood) is drawn per patient and per day
from a generator seeded with (seed, day), so the same seed always gives the
same week, byte for byte, and one day can be rendered without the others.

Rendering is vectorised: an update is the concatenation of a per-slot opening,
the patient's name and one of the 6**4 combinations of the four lists, so a
slot of a million patients is three numpy string additions, not a million
f-strings.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import numpy as np

MAX_PATIENTS = 1_000_000

MEDICATIONS = (
    "Klonopin",
    "Lithium",
    "Paxil",
    "Sertraline",
    "Quetiapine",
    "Lamotrigine",
)
DOSES = ("5 mg", "10 mg", "20 mg", "25 mg", "50 mg", "100 mg")
SYMPTOMS = (
    "suicidal thoughts",
    "loss of appetite",
    "increased appetite",
    "trouble sleeping",
    "racing thoughts",
    "panic attacks",
)
MOODS = ("anger", "sadness", "depression", "anxiety", "calm", "hope")
FACILITY_CONTACT = "240-555-0142 or email ward-updates@hospital.example"

# Draws per patient and day: medication, dose, symptom, mood, each one of six.
CHOICES_PER_DRAW = 6
COMBINATIONS = CHOICES_PER_DRAW**4
DEFAULT_START_DATE = dt.date(2024, 5, 11)


def topic(patient: int) -> str:
    """The topic a patient's updates are published on."""
    return f"Patient_{patient}_data"


def patient_name(patient: int) -> str:
    return f"Patient_{patient}"


def _combination_texts() -> np.ndarray:
    """The tail of an update for every (medication, dose, symptom, mood)."""
    tails = [
        f" received {dose} of {medication}. The patient reported having {symptom}"
        f" and feelings of {mood}. If you have any questions or concerns please"
        f" call our facility at {FACILITY_CONTACT}!"
        for medication in MEDICATIONS
        for dose in DOSES
        for symptom in SYMPTOMS
        for mood in MOODS
    ]
    return np.array([tail.encode() for tail in tails])


_TAILS = _combination_texts()
_COMBINATION_WEIGHTS = np.array([216, 36, 6, 1], dtype=np.int64)


def slot_opening(when: dt.datetime) -> bytes:
    """The words every update of one slot starts with."""
    return f"Dear Caregiver, on {when:%Y-%m-%d %H:%M:%S}: your patient ".encode()


@functools.lru_cache(maxsize=2)
def _day_combinations(patients: int, seed: int, day: int) -> np.ndarray:
    rng = np.random.default_rng([seed, day])
    draws = rng.integers(0, CHOICES_PER_DRAW, size=(patients, 4))
    return draws @ _COMBINATION_WEIGHTS


@dataclass(frozen=True)
class Hospital:
    """A hospital of `patients` patients whose updates are drawn from `seed`."""

    patients: int
    seed: int
    start_date: dt.date = DEFAULT_START_DATE

    def __post_init__(self) -> None:
        if not 1 <= self.patients <= MAX_PATIENTS:
            raise ValueError(f"patients must be 1 to {MAX_PATIENTS:,}")

    def combinations(self, day: int) -> np.ndarray:
        """Index into the 6**4 update tails for every patient on `day`."""
        return _day_combinations(self.patients, self.seed, day)

    def names(self, patients: np.ndarray) -> np.ndarray:
        """Patient names as bytes for patient numbers (1-based)."""
        return np.strings.add(b"Patient_", patients.astype("S7"))

    def render(self, when: dt.datetime, day: int, patients: np.ndarray) -> np.ndarray:
        """The update texts (bytes) for `patients` at simulated time `when`."""
        tails = _TAILS[self.combinations(day)[patients - 1]]
        heads = np.strings.add(slot_opening(when), self.names(patients))
        return np.strings.add(heads, tails)

    def update_text(self, patient: int, day: int, slot_time: dt.datetime) -> str:
        """One update as a string, for printing and tests."""
        texts = self.render(slot_time, day, np.array([patient]))
        return texts[0].decode()

    def longest_update(self) -> int:
        """The length in bytes of the longest update this hospital can render."""
        longest_name = len(patient_name(self.patients))
        opening = len(slot_opening(dt.datetime(2000, 1, 1)))
        return opening + longest_name + int(np.strings.str_len(_TAILS).max())
