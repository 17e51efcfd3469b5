"""Bad input at the doors a user opens: scenario files and options, fuzzed.

Every mistake ends as one line on standard error naming what was wrong, exit
status 2, no traceback; the fuzz tests check that nothing a scenario file can
hold reaches the harness as anything but a checked scenario or a
ScenarioError.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.cli import build_parser, scenario_from_options
from sim.errors import UserError
from sim.scenario import from_mapping, resolve
from tests.conftest import run_wardcast

FUZZ = settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Values of every kind TOML can hold, including the awkward ones.
toml_values = st.recursive(
    st.none().map(lambda _: "")
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.dates(min_value=dt.date(1, 1, 1))
    | st.sampled_from(["max", "8-12", "1-3,5", "12-8", "administration", "0"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
scenario_keys = st.sampled_from(
    [
        "patients",
        "days",
        "updates_per_day",
        "rate",
        "hwm",
        "message_bytes",
        "seed",
        "day_seconds",
        "start_date",
        "endpoint",
        "subscribers_per_process",
        "curve",
        "keys",
        "max_message_bytes",
        "drain_quiet_seconds",
        "sndbuf",
        "name",
        "subscriber",
        "no_such_key",
    ]
)
subscriber_tables = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "role": st.sampled_from(["caregiver", "psychiatrist", "administration"])
            | st.text(max_size=6),
            "patients": toml_values,
            "count": toml_values,
            "name": toml_values,
            "slow_us": toml_values,
        },
    ),
    max_size=3,
)


@FUZZ
@given(
    st.dictionaries(scenario_keys, toml_values, max_size=5),
    st.none() | subscriber_tables,
)
def test_fuzz_scenario_files_give_a_scenario_or_a_user_error(
    raw: dict, subscribers: list | None
) -> None:
    if subscribers is not None:
        raw["subscriber"] = subscribers
    try:
        scenario = resolve(from_mapping(raw, source="fuzz.toml"))
    except UserError as error:
        assert "\n" not in str(error)
        return
    assert 1 <= scenario.patients
    assert scenario.message_bytes % 8 == 0
    assert scenario.subscribers
    assert scenario.rate is None or scenario.rate > 0
    assert math.isfinite(scenario.day_seconds) and scenario.day_seconds > 0


option_values = st.sampled_from(
    ["0", "-1", "1", "x", "", "1e9", "max", "nan", "inf", "99999999999999999999"]
)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "--patients",
                    "--days",
                    "--rate",
                    "--hwm",
                    "--message-bytes",
                    "--day-seconds",
                    "--subscriber",
                    "--endpoint",
                    "--max-message-bytes",
                    "--subscribers-per-process",
                ]
            ),
            option_values | st.text(max_size=10),
        ),
        max_size=4,
    )
)
def test_fuzz_run_options_give_a_scenario_or_a_user_error(
    options: list[tuple[str, str]],
) -> None:
    argv = ["run"] + [f"{option}={value}" for option, value in options]
    try:
        scenario_from_options(build_parser().parse_args(argv))
    except UserError as error:
        assert "\n" not in str(error)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("patients = 0", "patients"),
        ("patients = 2.5", "patients"),
        ('rate = "fast"', "rate"),
        ("rate = nan", "rate"),
        ("day_seconds = inf", "day_seconds"),
        ("hwm = -1", "hwm"),
        ("max_message_bytes = 8", "max_message_bytes"),
        ('curve = "yes"', "curve"),
        ("message_bytes = 16", "message_bytes"),
        ('endpoint = "udp://x"', "endpoint"),
        ("pateints = 3", "pateints"),
        ('start_date = "May"', "start_date"),
        ("[[subscriber]]\nrole = 'nurse'", "nurse"),
        ("[[subscriber]]\nrole = 'caregiver'\npatients = [1, 2]", "caregiver"),
        ("[[subscriber]]\npatients = [1]", "role"),
        ("[[subscriber]]\nrole = 'psychiatrist'\npatients = '12-8'", "12-8"),
        ("patients = [", "TOML"),
    ],
)
def test_bad_scenario_file_is_one_line_naming_the_key(
    text: str, named: str, tmp_path: Path
) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text(text + "\n")
    completed = run_wardcast(
        "run", "--scenario", str(scenario), "--out", str(tmp_path / "out")
    )
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1, completed.stderr
    assert named in completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ("run", "--patients", "many"),
        ("run", "--max-message-bytes", "-5"),
        ("run", "--scenario", "/no/such/file.toml"),
        ("subscribe", "--role", "caregiver", "--patient", "1", "--endpoint", "x"),
        ("subscribe", "--role", "administration", "--max-message-bytes", "0"),
        ("keys",),
    ],
)
def test_bad_option_is_one_line_with_status_2(argv: tuple[str, ...]) -> None:
    completed = run_wardcast(*argv)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1, completed.stderr
    assert "Traceback" not in completed.stderr
