"""The `wardcast` command line.

Every check of what the user typed happens in `scenario_from_options` (and the
scenario module it calls), which raises ScenarioError; `main` alone turns
errors into one line on standard error and an exit status:

    0  the run passed
    1  the run measured a failure (foreign or malformed updates, a subscriber
       that never reported) or could not finish, or its result could not be
       written where asked
    2  the user asked for something that cannot be done
  130  interrupted by Ctrl-C; what was measured is written, marked incomplete
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import tempfile
from pathlib import Path

from sim.errors import RunError, ScenarioError, UserError
from sim.roles import parse_subscriber
from sim.scenario import Scenario, load, parse_rate, resolve
from sim.security import refuse_plaintext

logger = logging.getLogger("sim")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# The shell's convention for a command ended by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is a ScenarioError like any other."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ScenarioError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wardcast", description=__doc__.splitlines()[0])
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="say more: -v for each step, -vv for everything",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )
    _add_run(commands)
    report = commands.add_parser(
        "report", help="charts and an HTML report from results on disk"
    )
    report.add_argument("folder", type=Path, help="holds a result.json or sweep.json")
    compare = commands.add_parser("compare", help="two results or sweeps side by side")
    compare.add_argument("first", type=Path, help="a run or sweep folder (A)")
    compare.add_argument("second", type=Path, help="a run or sweep folder (B)")
    _add_deploy(commands)
    _add_sweep(commands)

    from sim.realtime import add_publish_options
    from sim.realtime_subscriber import add_subscribe_options

    add_publish_options(
        commands.add_parser("publish", help="the hospital's publisher, in real time")
    )
    add_subscribe_options(
        commands.add_parser("subscribe", help="one subscriber, in real time")
    )
    _add_keys(commands)
    return parser


def _add_outputs(
    parser: argparse.ArgumentParser, written: str, folder: str = "the results"
) -> None:
    """--out and --no-report, for a command that writes `written`."""
    parser.add_argument(
        "--out", type=Path, help=f"folder for {folder} (default: results/NAME-TIME)"
    )
    parser.add_argument(
        "--no-report",
        action="store_true",
        help=f"write {written} only, not report.html and report.md",
    )


def _add_run(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="one simulated scenario (default: a week)")
    add_scenario_options(run)
    _add_outputs(run, "result.json")
    run.add_argument(
        "--namespaces",
        action="store_true",
        help="each process in its own network namespace, joined by a bridge (root)",
    )


def _add_deploy(commands: argparse._SubParsersAction) -> None:
    deploy = commands.add_parser(
        "deploy-netns",
        help="the deployment across network namespaces, measured against loopback",
    )
    add_scenario_options(deploy)
    _add_outputs(deploy, "result.json")
    deploy.add_argument(
        "--remove-leftovers",
        action="store_true",
        help="only remove namespaces and links left by runs that were killed",
    )


def _add_sweep(commands: argparse._SubParsersAction) -> None:
    sweep = commands.add_parser(
        "sweep", help="a grid of runs from a sweep file, beside a raw-pyzmq baseline"
    )
    sweep.add_argument("file", type=Path, help="a scenario file with a [sweep] table")
    _add_outputs(sweep, "sweep.json", folder="the sweep")
    sweep.add_argument(
        "--resume",
        action="store_true",
        help="finish the sweep already in --out, keeping the points it has",
    )


def _add_keys(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser(
        "keys", help="CURVE certificates for a publisher and its subscribers"
    )
    keys.add_argument("folder", type=Path, help="where to write the certificates")
    keys.add_argument(
        "--keep-existing",
        action="store_true",
        help="leave a folder that already holds keys as it is (for scripts)",
    )
    keys.add_argument(
        "--subscriber",
        action="append",
        metavar="NAME",
        help="a subscriber's name; repeat (default: the reference six)",
    )


def add_scenario_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", type=Path, help="a scenario file (TOML)")
    parser.add_argument("--name", help="the scenario's name in results")
    parser.add_argument("--patients", type=int)
    parser.add_argument("--days", type=int)
    parser.add_argument("--updates-per-day", type=int)
    parser.add_argument(
        "--subscriber",
        action="append",
        metavar="ROLE[:PATIENTS]",
        help="caregiver:3, psychiatrist:8,9,10 or administration; repeat",
    )
    parser.add_argument(
        "--rate",
        metavar="UPDATES_PER_S|max",
        help="pace by updates per second, or 'max'; default: the clock",
    )
    parser.add_argument(
        "--day-seconds",
        type=float,
        help="wall seconds per simulated day when paced by the clock",
    )
    parser.add_argument(
        "--hwm", type=int, help="high-water mark of every socket (0 = unlimited)"
    )
    parser.add_argument("--message-bytes", type=int, help="bytes per update frame")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--subscribers-per-process", type=int)
    parser.add_argument(
        "--endpoint", help="where the publisher binds (tcp://127.0.0.1:*)"
    )
    parser.add_argument(
        "--curve",
        action="store_true",
        default=None,
        help="encrypt with CURVE (keys made for the run unless --keys)",
    )
    parser.add_argument(
        "--keys", help="CURVE key folder made by `wardcast keys` (implies --curve)"
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow plaintext on an --endpoint other machines can reach",
    )
    parser.add_argument(
        "--max-message-bytes",
        type=int,
        help="subscribers' ZMQ_MAXMSGSIZE: 0 the frame size (default), -1 unlimited",
    )


_OPTION_FIELDS = (
    "name",
    "patients",
    "days",
    "updates_per_day",
    "day_seconds",
    "hwm",
    "message_bytes",
    "seed",
    "subscribers_per_process",
    "endpoint",
    "curve",
    "keys",
    "max_message_bytes",
)


def scenario_from_options(args: argparse.Namespace) -> Scenario:
    """The scenario the options describe, checked; raises ScenarioError."""
    # A sweep file's [sweep] table is set aside: `run` runs its base scenario.
    scenario = (
        load(args.scenario, extra_keys=frozenset({"sweep"}))[0]
        if args.scenario
        else Scenario()
    )
    changes = {
        key: getattr(args, key)
        for key in _OPTION_FIELDS
        if getattr(args, key) is not None
    }
    if args.rate is not None:
        changes["rate"] = parse_rate(args.rate)
    if args.subscriber:
        changes["subscribers"] = tuple(
            parse_subscriber(text) for text in args.subscriber
        )
    if args.keys:
        changes["curve"] = True
    scenario = resolve(scenario.replace(**changes))
    refuse_plaintext(scenario.endpoint, insecure=args.insecure, curve=scenario.curve)
    return scenario


def command_run(args: argparse.Namespace) -> int:
    scenario = scenario_from_options(args)
    if args.namespaces:
        scenario = resolve(scenario.replace(namespaces=True))
    if scenario.namespaces:
        from sim.netns import unavailable_reason

        if unavailable_reason():
            raise UserError(f"cannot make network namespaces: {unavailable_reason()}")
    out = args.out or default_out(scenario.name)
    _check_writable(out)

    from sim import result as results
    from sim.harness import Harness

    logger.info(
        "running %s: %d updates to %d subscribers",
        scenario.name,
        scenario.messages,
        len(scenario.subscribers),
    )
    from sim.faults import needs_fault_harness

    interrupted = False
    if needs_fault_harness(scenario):
        from sim import deploy

        record = deploy.run(scenario, log_level=_log_level(args.verbose))
    else:
        outcome = Harness(scenario, log_level=_log_level(args.verbose)).run()
        interrupted = outcome.interrupted
        record = results.build(outcome)
    print(results.summary(record), flush=True)
    _print_faults(record)
    path = _write_result(record, out)
    print(f"result: {path}" + (" (incomplete)" if interrupted else ""))
    if not args.no_report and path.parent == out:
        from reports.report import write_report

        print(f"report: {write_report(out)[0]}")
    if interrupted:
        return EXIT_INTERRUPTED
    if path.parent != out:
        return EXIT_FAILED
    return (
        EXIT_OK if record["passed"] and record["status"] == "complete" else EXIT_FAILED
    )


def default_out(name: str) -> Path:
    """results/NAME-TIME, with a suffix when that folder is already taken."""
    base = Path("results") / f"{name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    folder, suffix = base, 1
    while folder.exists():
        suffix += 1
        folder = base.with_name(f"{base.name}-{suffix}")
    return folder


def _write_result(record: dict, out: Path) -> Path:
    """Write the result in `out`, or, if that disk fails (full, say), in the
    temporary folder, saying so: what was measured is never thrown away."""
    from sim import result as results

    try:
        return results.write(record, out)
    except OSError as error:
        fallback = Path(tempfile.mkdtemp(prefix="wardcast-result-"))
        try:
            path = results.write(record, fallback)
        except OSError as second:
            raise RunError(
                f"cannot write result.json in {out} ({error.strerror}) nor in"
                f" {fallback} ({second.strerror}): free some space; the table above"
                " is what was measured"
            ) from None
        print(
            f"wardcast: cannot write result.json in {out} ({error.strerror});"
            f" wrote it to {path} instead",
            file=sys.stderr,
        )
        return path


def command_keys(args: argparse.Namespace) -> int:
    from sim.roles import reference_subscribers
    from sim.security import create_keys

    names = args.subscriber or [spec.name for spec in reference_subscribers()]
    if args.keep_existing and (args.folder / "publisher.key_secret").exists():
        print(f"{args.folder} already holds keys; left as they are")
        return 0
    made = create_keys(args.folder, names)
    print(f"publisher key: {made[0]} (its secret beside it: publisher only)")
    for path in made[1:]:
        print(f"subscriber key: {path} (secret: {path.name}_secret, that subscriber)")
    print(
        f"the publisher admits the public keys in {args.folder / 'subscribers'};"
        " remove a .key file there to revoke a subscriber"
    )
    return 0


def command_report(args: argparse.Namespace) -> int:
    from reports.report import write_report

    html, markdown = write_report(args.folder)
    print(f"report: {html}\nsummary: {markdown}")
    return EXIT_OK


def command_compare(args: argparse.Namespace) -> int:
    from reports.compare import compare

    print(compare(args.first, args.second))
    return EXIT_OK


def command_deploy_netns(args: argparse.Namespace) -> int:
    from sim import deploy, netns
    from sim import result as results

    if args.remove_leftovers:
        print(f"removed {netns.remove_leftovers()} namespaces and links")
        return EXIT_OK
    reason = netns.unavailable_reason()
    if reason:
        raise UserError(f"cannot make network namespaces: {reason}")
    scenario = scenario_from_options(args)
    out = args.out or Path("results") / (
        f"{scenario.name}-netns-{dt.datetime.now():%Y%m%d-%H%M%S}"
    )
    _check_writable(out)
    record = deploy.veth_against_loopback(
        scenario, out, log_level=_log_level(args.verbose)
    )
    path = results.write(record, out)
    print(results.summary(record))
    comparison = record["veth_vs_loopback"]
    for medium in ("loopback", "veth"):
        figures = comparison[medium]
        print(
            f"{medium:>8}: one-way p50 {figures['latency_from_actual_us']['p50']:,.0f}"
            f" µs, p99 {figures['latency_from_actual_us']['p99']:,.0f} µs,"
            f" {figures['delivered_per_s']:,.0f} updates/s delivered"
        )
    print(f"result: {path}")
    if not args.no_report:
        from reports.report import write_report

        print(f"report: {write_report(out)[0]}")
    return (
        EXIT_OK if record["passed"] and record["status"] == "complete" else EXIT_FAILED
    )


def _print_faults(record: dict) -> None:
    for fault in record.get("faults", []):
        if "note" in fault:
            print(f"fault {fault['kind']} on {fault['target']}: {fault['note']}")
            continue
        recovery = fault.get("recovery_seconds")
        when = fault.get("lasts") or f"at {fault.get('injected_at_seconds') or 0:.2f} s"
        print(
            f"fault {fault['kind']} on {fault['target']} {when}:"
            f" {fault.get('messages_lost')} updates lost"
            + (f", recovered in {recovery:.3f} s" if recovery is not None else "")
        )


def command_sweep(args: argparse.Namespace) -> int:
    from sim.sweep import Sweep
    from sim.sweepspec import load_sweep
    from sim.verdict import describe

    spec = load_sweep(args.file)
    if args.resume and args.out is None:
        raise ScenarioError("--resume needs the --out folder of the sweep to finish")
    out = args.out or default_out(spec.name)
    try:
        document = Sweep(
            spec, out, resume=args.resume, log_level=_log_level(args.verbose)
        ).run()
    except KeyboardInterrupt:
        print(
            f"wardcast: sweep interrupted; finish it with: wardcast sweep {args.file}"
            f" --out {out} --resume",
            file=sys.stderr,
        )
        return 130
    print(describe(document))
    print(f"sweep: {out / 'sweep.json'}")
    if not args.no_report:
        from reports.report import write_report

        print(f"report: {write_report(out)[0]}")
    failed = [p for p in document["points"] if p["status"] != "done"]
    return EXIT_FAILED if failed else EXIT_OK


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ScenarioError(
            f"cannot create output folder {folder}: {error.strerror};"
            " choose another with --out"
        ) from None
    if (folder / "result.json").exists():
        raise ScenarioError(
            f"{folder} already holds a result.json: choose another --out or remove it"
        )


def _log_level(verbosity: int) -> str:
    return ["WARNING", "INFO", "DEBUG"][min(verbosity, 2)]


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except ScenarioError as error:
        print(f"wardcast: {error}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=_log_level(args.verbose),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from sim import realtime, realtime_subscriber

    handlers = {
        "run": command_run,
        "report": command_report,
        "compare": command_compare,
        "deploy-netns": command_deploy_netns,
        "sweep": command_sweep,
        "publish": realtime.command_publish,
        "subscribe": realtime_subscriber.command_subscribe,
        "keys": command_keys,
    }
    try:
        return handlers[args.command](args)
    except UserError as error:
        print(f"wardcast: {error}", file=sys.stderr)
        return EXIT_USAGE
    except RunError as error:
        print(f"wardcast: run failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("wardcast: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
