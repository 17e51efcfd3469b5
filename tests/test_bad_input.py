"""Every user mistake ends with one line naming it, status 2, no traceback."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import run_wardcast


def assert_one_line_error(completed, *fragments: str) -> None:
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("wardcast: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        (["--patients", "0"], ["patients must be a whole number from 1"]),
        (["--patients", "-4"], ["patients must be a whole number from 1"]),
        (["--patients", "many"], ["--patients", "invalid int value"]),
        (["--days", "0"], ["days must be"]),
        (["--subscriber", "nurse:1"], ["unknown role 'nurse'", "caregiver"]),
        (["--subscriber", "caregiver:26"], ["patient 26", "--patients"]),
        (["--subscriber", "caregiver:1,2"], ["exactly one patient"]),
        (["--rate", "0"], ["rate must be above 0"]),
        (["--rate", "fast"], ["rate 'fast' is not a number"]),
        (["--hwm", "-1"], ["hwm must be a whole number, 0 or more"]),
        (
            ["--message-bytes", "100"],
            ["message_bytes 100 is too small", "at least 368"],
        ),
        (
            ["--endpoint", "tcp:/127.0.0.1"],
            ["cannot parse endpoint", "tcp://HOST:PORT"],
        ),
        (["--endpoint", "tcp://127.0.0.1:70000"], ["out of range"]),
        (["--scenario", "/nonexistent/week.toml"], ["does not exist"]),
        (["--bogus"], ["unrecognized arguments: --bogus"]),
    ],
)
def test_bad_run_options_give_one_line_and_status_2(tmp_path, options, fragments):
    completed = run_wardcast("run", "--out", str(tmp_path / "out"), *options)
    assert_one_line_error(completed, *fragments)
    assert not (tmp_path / "out" / "result.json").exists()


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("patients = 10\npatiens = 5\n", ["unknown key 'patiens'", "known keys"]),
        ("patients = 'ten'\n", ["patients must be a whole number"]),
        (
            "[[subscriber]]\nrole = 'caregiver'\npatient = 3\n",
            ["unknown key 'patient'"],
        ),
        ("[[subscriber]]\npatients = [3]\n", ["has no role"]),
        ("[[subscriber]]\nrole = 'ward'\n", ["unknown role 'ward'"]),
        ("patients = [\n", ["is not valid TOML"]),
        ("rate = -5\n", ["rate must be above 0"]),
    ],
)
def test_bad_scenario_files_give_one_line_naming_the_key(tmp_path, text, fragments):
    scenario = tmp_path / "bad.toml"
    scenario.write_text(text)
    completed = run_wardcast("run", "--scenario", str(scenario), "--out", str(tmp_path))
    assert_one_line_error(completed, *fragments)


def test_a_port_in_use_is_named_with_the_fix(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        completed = run_wardcast(
            "run", "--endpoint", f"tcp://127.0.0.1:{port}", "--out", str(tmp_path)
        )
    assert_one_line_error(completed, f"127.0.0.1:{port}", "in use", "--endpoint")


def test_an_unknown_role_for_the_real_time_subscriber_is_refused():
    completed = run_wardcast("subscribe", "--role", "visitor", "--patient", "1")
    assert_one_line_error(completed, "unknown role 'visitor'")


def test_a_missing_command_is_a_usage_error():
    completed = run_wardcast()
    assert_one_line_error(completed, "required")
