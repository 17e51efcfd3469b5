"""The deployment across network namespaces: a publisher and six
subscribers, each on its own network stack, joined by a bridge, made and
removed by the harness (`pytest -k namespace`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter

import pytest

from sim import netns
from tests.conftest import COMMAND_TIMEOUT_S, read_result, run_wardcast
from tests.netns_support import (
    needs_namespaces,
    no_leftovers,  # noqa: F401 (a fixture)
    traced,
)

pytestmark = [needs_namespaces, pytest.mark.usefixtures("no_leftovers")]

REFERENCE_TRACED = """
name = "reference-week"
[[subscriber]]
role = "caregiver"
patients = [1]
trace = true
[[subscriber]]
role = "caregiver"
patients = [2]
trace = true
[[subscriber]]
role = "caregiver"
patients = [3]
trace = true
[[subscriber]]
role = "psychiatrist"
patients = [8, 9]
trace = true
[[subscriber]]
role = "psychiatrist"
patients = "10-14"
trace = true
[[subscriber]]
role = "administration"
trace = true
"""
UPDATES_PER_PATIENT = 7 * 2  # a week, twice a day
PATIENTS = 25


def _names(topology: netns.Topology) -> set[str]:
    return {host.namespace for host in topology.hosts.values()} | {topology.switch}


def test_namespace_topology_made_with_addresses_and_removed():
    with netns.Topology(subscriber_hosts=2) as topology:
        present = set(netns.leftovers()[0])
        assert _names(topology) <= present
        for host in topology.hosts.values():
            addresses = netns.run_ip("-o", "-4", "addr", namespace=host.namespace)
            assert f"{host.address}/24" in addresses
            assert "127.0.0.1/8" in addresses  # loopback is up
        assert topology.publisher.address != topology.subscriber_host(0).address
    assert not _names(topology) & set(netns.leftovers()[0])
    topology.remove()  # a second removal is harmless


def test_namespace_removed_even_when_the_block_fails():
    with pytest.raises(RuntimeError, match="on purpose"):
        with netns.Topology(subscriber_hosts=1) as topology:
            raise RuntimeError("fails on purpose")
    namespaces, links = netns.leftovers()
    assert not _names(topology) & set(namespaces)
    assert not [link for link in links if link.startswith(topology.prefix)]


def test_namespace_removed_when_the_process_is_terminated():
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfrom sim import netns\n"
            "with netns.Topology(subscriber_hosts=1) as t:\n"
            "    print(t.prefix, flush=True)\n"
            "    sys.stdin.readline()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        prefix = holder.stdout.readline().strip()
        assert prefix.startswith(netns.PREFIX)
        assert any(n.startswith(prefix) for n in netns.leftovers()[0])
        holder.terminate()
        assert holder.wait(COMMAND_TIMEOUT_S) == 128 + 15
    finally:
        holder.kill()
        holder.wait()
        holder.stdin.close()
        holder.stdout.close()
    namespaces, links = netns.leftovers()
    assert not [name for name in namespaces + links if name.startswith(prefix)]


def test_namespace_leftovers_found_and_removed_by_prefix():
    topology = netns.Topology(subscriber_hosts=1).create()
    try:
        assert netns.remove_leftovers(topology.token) >= len(_names(topology))
        assert not _names(topology) & set(netns.leftovers()[0])
    finally:
        topology.remove()


def test_namespace_run_option_puts_each_process_on_its_own_host(tmp_path):
    completed = run_wardcast("run", "--namespaces", "--out", str(tmp_path))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    record = read_result(tmp_path)
    deployment = record["deployment"]
    assert deployment["data_endpoint"].startswith("tcp://10.213.")
    placed = [entry["namespace"] for entry in record["subscribers"]]
    placed.append(record["publisher"]["namespace"])
    assert len(set(placed)) == 7  # the publisher and six subscribers apart
    assert set(placed) <= set(deployment["hosts"])


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv")
def test_namespace_run_refused_without_root_in_one_line(tmp_path):
    out = tmp_path / "never"
    completed = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        + [sys.executable, "-m", "sim.cli", "run", "--namespaces", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        cwd=tmp_path,
    )
    assert completed.returncode == 2
    assert completed.stderr == (
        "wardcast: cannot make network namespaces: network namespaces need root\n"
    )
    assert not out.exists()


@pytest.mark.slow
def test_namespace_reference_deployment_delivers_exactly_each_subscribers_patients(
    tmp_path,
):
    scenario = tmp_path / "reference-traced.toml"
    scenario.write_text(REFERENCE_TRACED)
    out = tmp_path / "deployment"
    completed = run_wardcast(
        "deploy-netns", "--scenario", str(scenario), "--out", str(out), timeout=600
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    record = read_result(out)
    assert record["status"] == "complete" and record["passed"]
    assert len({entry["namespace"] for entry in record["subscribers"]}) == 6
    for entry in record["subscribers"]:
        wanted = set(entry["patients"]) or set(range(1, PATIENTS + 1))
        per_patient = Counter(traced(entry, record["run_id"])[:, 1].tolist())
        assert set(per_patient) == wanted, entry["name"]
        assert set(per_patient.values()) == {UPDATES_PER_PATIENT}, entry["name"]
        assert entry["foreign"] == 0 and entry["dropped"] == 0
    comparison = record["veth_vs_loopback"]
    for medium in ("loopback", "veth"):
        assert comparison[medium]["delivered_per_s"] > 0
        assert comparison[medium]["latency_from_actual_us"]["p50"] > 0
        assert read_result(out / medium)["totals"]["dropped"] == 0
        for probe in ("latency", "throughput"):
            assert (out / f"{probe}-{medium}" / "result.json").exists()
    assert comparison["throughput_ratio"] == pytest.approx(
        comparison["veth"]["delivered_per_s"]
        / comparison["loopback"]["delivered_per_s"]
    )
    # The report deploy-netns writes shows both paths' figures from the file.
    summary = (out / "report.md").read_text()
    assert "## Veth against loopback" in summary
    for medium in ("loopback", "veth"):
        delivered = comparison[medium]["delivered_per_s"]
        assert f"| {medium} |" in summary and f"{delivered:,.0f}" in summary
