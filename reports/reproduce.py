"""How to measure a result again: its scenario written back as a TOML file.

A result records every setting of its run, but not every setting has an
option (a slow subscriber, socket buffers), so the report writes the whole
scenario as a file `wardcast run --scenario` reads, and quotes that command.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

SCENARIO_FILE = "scenario.toml"
# Recorded in result.json for the reader but not settings of a scenario file.
_DERIVED = {"messages", "subscribers"}
_SUBSCRIBER_KEYS = ("name", "role", "patients", "slow_us", "trace")


def scenario_toml(scenario: dict[str, Any]) -> str:
    lines = ["# The scenario of this result, as `wardcast run --scenario` reads it."]
    for key, value in scenario.items():
        if key in _DERIVED or value is None:
            continue
        if key == "rate" and value == "clock":
            continue  # no rate: paced by the simulated clock
        lines.append(f"{key} = {_value(value)}")
    for subscriber in scenario.get("subscribers", []):
        lines += ["", "[[subscriber]]"]
        for key in _SUBSCRIBER_KEYS:
            if key in subscriber:
                lines.append(f"{key} = {_value(subscriber[key])}")
    return "\n".join(lines) + "\n"


def _value(value: Any) -> str:
    # JSON spells strings, numbers, booleans and lists of them as TOML does.
    return json.dumps(value)


def write_scenario(folder: Path, scenario: dict[str, Any]) -> Path:
    path = folder / SCENARIO_FILE
    path.write_text(scenario_toml(scenario))
    return path


def run_command(folder: Path) -> str:
    scenario = shlex.quote(str(folder / SCENARIO_FILE))
    return f"wardcast run --scenario {scenario} --out NEW"


def report_command(folder: Path) -> str:
    return f"wardcast report {shlex.quote(str(folder))}"
