"""A subscription wider than its patients is caught: every update it lets
through is counted as foreign, the run fails, and its report says so first.

The roles cannot make such a subscription (see test_roles), so the test hands
the harness one directly: the naive `Patient_1` prefix, which matches patients
1, 10 to 19 and 100 to 120 of 120 patients.
"""

from __future__ import annotations

from reports.report import write_report
from sim import result as results
from sim.harness import Harness
from sim.scenario import from_mapping, resolve

PATIENTS = 120
DAYS = 2
UPDATES_PER_DAY = 2


def test_a_naive_prefix_lets_foreign_updates_in_and_the_report_leads_with_them(
    tmp_path,
):
    scenario = resolve(
        from_mapping(
            {
                "patients": PATIENTS,
                "days": DAYS,
                "updates_per_day": UPDATES_PER_DAY,
                "rate": "max",
                "subscriber": [
                    {"role": "caregiver", "patients": [1]},
                    {"role": "administration"},
                ],
            },
            source="test",
        )
    )
    caregiver = scenario.subscribers[0].name
    outcome = Harness(scenario, wrong_subscriptions={caregiver: [b"Patient_1"]}).run()
    record = results.build(outcome)
    results.write(record, tmp_path)

    # Kept independently of the harness: which topics the naive prefix
    # matches, each with DAYS x UPDATES_PER_DAY updates.
    matched = [
        n for n in range(1, PATIENTS + 1) if f"Patient_{n}_".startswith("Patient_1")
    ]
    assert len(matched) == 1 + 10 + 21  # 1, 10 to 19, 100 to 120
    foreign = (len(matched) - 1) * DAYS * UPDATES_PER_DAY
    entries = {entry["name"]: entry for entry in record["subscribers"]}
    assert entries[caregiver]["foreign"] == foreign
    assert entries[caregiver]["received"] == DAYS * UPDATES_PER_DAY
    assert entries[caregiver]["dropped"] == 0
    assert entries["administration"]["foreign"] == 0
    assert record["totals"]["foreign"] == foreign
    assert not record["passed"]

    html, markdown = write_report(tmp_path)
    summary = markdown.read_text()
    warning = f"subscriber {caregiver} received {foreign} foreign updates"
    # Among the warnings, in bold, before the first chart.
    assert f"**{warning}" in summary
    assert summary.index(warning) < summary.index("![")
    assert warning in html.read_text()
