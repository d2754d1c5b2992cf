"""The ``firewarden`` command line."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from firewarden import __version__
from firewarden.logs import configure_logging
from firewarden.ports import PortInUseError
from firewarden.settings import Settings, SettingsError, load_settings, parse_mqtt_url

EXIT_BAD_SETTING = 2
EXIT_FAILURE = 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_BAD_SETTING
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"firewarden: {error}", file=sys.stderr)
        return EXIT_BAD_SETTING
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    try:
        code: int = args.handler(settings, args)
    except PortInUseError as error:
        print(f"firewarden: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except SettingsError as error:
        print(f"firewarden: {error}", file=sys.stderr)
        return EXIT_BAD_SETTING
    except KeyboardInterrupt:
        return 130
    return code


# --- commands -------------------------------------------------------------------------
def _cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from firewarden.runtime import run_up

    return asyncio.run(run_up(settings, demo=args.demo))


def _cmd_ingest(settings: Settings, _args: argparse.Namespace) -> int:
    from firewarden.runtime import run_ingest

    return asyncio.run(run_ingest(settings))


def _cmd_settings(settings: Settings, _args: argparse.Namespace) -> int:
    """Print the effective settings, secrets masked."""
    for name, value in settings.model_dump().items():
        shown = "**********" if value is not None and "SecretStr" in type(value).__name__ else value
        print(f"FIREWARDEN_{name}={'' if shown is None else shown}")
    return 0


def _cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from simulators import (
        FleetPublisher,
        FleetSimulation,
        PublishOptions,
        Scenario,
        SimConfig,
        SimulatorError,
        write_registry_csv,
    )

    try:
        scenarios = frozenset(Scenario(s) for s in args.scenario) or frozenset({Scenario.NORMAL})
    except ValueError as error:
        print(f"firewarden simulate: --scenario: {error}; choose from "
              + ", ".join(s.value for s in Scenario), file=sys.stderr)
        return EXIT_BAD_SETTING
    config = SimConfig(
        smoke=args.smoke, electrical=args.electrical, controlrooms=args.controlrooms,
        sites=args.sites, scenarios=scenarios, seed=args.seed, start_ms=args.start,
        speed=args.speed, onset_s=args.onset * args.speed, prefix=args.prefix or
        settings.TOPIC_PREFIX, smoke_interval_s=args.smoke_interval,
        electrical_interval_s=args.electrical_interval,
        controlroom_interval_s=args.heartbeat_interval,
        max_payload_bytes=settings.MAX_PAYLOAD_BYTES,
    )
    sim = FleetSimulation(config)
    if args.write_registry:
        rows = write_registry_csv(sim.fleet, args.write_registry)
        print(f"wrote {rows} devices to {args.write_registry}", file=sys.stderr)
    if args.dry_run:
        stream = sim.messages()
        if args.duration is not None:
            stream = itertools.takewhile(lambda m: m.at <= args.duration * args.speed, stream)
        limit = args.count if args.count is not None else (None if args.duration else 100)
        for message in itertools.islice(stream, limit):
            print(json.dumps({"at": round(message.at, 3), "topic": message.topic,
                              "payload": message.payload.decode("utf-8", "replace"),
                              "expect": message.expect}, ensure_ascii=False))
        return 0
    if args.count == 0:
        return 0

    url = args.mqtt_url or (settings.MQTT_URL.get_secret_value() if settings.MQTT_URL else
                            f"mqtt://{settings.EMBEDDED_MQTT_HOST}:{settings.EMBEDDED_MQTT_PORT}")
    try:
        endpoint = parse_mqtt_url(url)
    except ValueError as error:
        print(f"firewarden simulate: --mqtt-url: {error}", file=sys.stderr)
        return EXIT_BAD_SETTING
    options = PublishOptions(
        qos=args.qos, duration_s=args.duration, count=args.count, rate=args.rate,
        fast=args.fast, answer_duty_checks=not args.no_answer,
        progress_every_s=0 if args.quiet else 5.0,
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    publisher = FleetPublisher(sim, endpoint, options, stop=stop)
    try:
        summary = publisher.run()
    except SimulatorError as error:
        print(f"firewarden simulate: {error}", file=sys.stderr)
        return EXIT_FAILURE
    print(summary.render(sim, args.qos))
    return 0


async def _in_database(settings: Settings, work: Callable[[AsyncSession], Awaitable[int]]) -> int:
    from firewarden.database import open_database

    async with open_database(settings.database_url) as (_engine, sessions), sessions() as session:
        return await work(session)


def _cmd_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    from firewarden.keys import Role, create_key

    async def work(session: AsyncSession) -> int:
        row, key = await create_key(session, name=args.name, role=Role(args.role))
        await session.commit()
        print(f"created key {row.id} ({row.role}) for {row.name}; it is shown only now:",
              file=sys.stderr)
        print(key)
        return 0

    return asyncio.run(_in_database(settings, work))


def _cmd_keys_list(settings: Settings, _args: argparse.Namespace) -> int:
    from firewarden.keys import list_keys

    async def work(session: AsyncSession) -> int:
        print(f"{'id':>4}  {'role':<9} {'prefix':<13} {'created':<20} {'state':<8} name")
        for row in await list_keys(session):
            state = "revoked" if row.revoked_at else "active"
            print(f"{row.id:>4}  {row.role:<9} {row.key_prefix:<13} "
                  f"{row.created_at:%Y-%m-%d %H:%M:%S}  {state:<8} {row.name}")
        return 0

    return asyncio.run(_in_database(settings, work))


def _cmd_keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from firewarden.keys import revoke_key

    async def work(session: AsyncSession) -> int:
        if not await revoke_key(session, args.id):
            print(f"firewarden keys revoke: no key {args.id}", file=sys.stderr)
            return EXIT_FAILURE
        await session.commit()
        print(f"key {args.id} revoked", file=sys.stderr)
        return 0

    return asyncio.run(_in_database(settings, work))


PERIODS = {"day": 1, "week": 7, "month": 30}


def _cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from alerts import stats

    async def work(session: AsyncSession) -> int:
        now = datetime.now(UTC)
        end = args.to or now
        start = end - timedelta(days=PERIODS[args.period])
        result = await stats.summary(session, start, end, now, args.group_by)
        if args.format == "csv":
            sys.stdout.write(stats.to_csv(result).removeprefix("\ufeff")
                             if sys.stdout.isatty() else stats.to_csv(result))
        elif args.format == "json":
            print(result.model_dump_json(indent=2))
        else:
            print(stats.to_text(result))
        return 0

    return asyncio.run(_in_database(settings, work))


def _report_end(text: str) -> object:
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("give a time such as 2026-11-23T00:00:00+08:00") \
            from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone, e.g. 2026-11-23T00:00:00+08:00")
    return moment


def _progress_bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    end = "\n" if done >= total else ""
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} devices written",
          end=end, file=sys.stderr, flush=True)


def _cmd_devices_import(settings: Settings, args: argparse.Namespace) -> int:
    from devices.registry.csv_import import CsvImportError, import_csv

    try:
        data = args.file.read_bytes()
    except OSError as error:
        print(f"firewarden devices import: {error}", file=sys.stderr)
        return EXIT_FAILURE

    async def work(session: AsyncSession) -> int:
        try:
            result = await import_csv(session, data, mode=args.mode, dry_run=args.dry_run,
                                      progress=None if args.dry_run else _progress_bar)
        except CsvImportError as error:
            print(f"{args.file}: {error}", file=sys.stderr)
            return EXIT_FAILURE
        if result.applied:
            await session.commit()
        for err in result.errors:
            print(f"{args.file}:{err.line}: {err.message}", file=sys.stderr)
        print(f"{result.rows} rows ({result.encoding}): {result.created} created, "
              f"{result.updated} updated, {result.unchanged} unchanged, "
              f"{len(result.errors)} bad; sites: {result.sites_created} created, "
              f"{result.sites_updated} updated")
        if result.errors and args.mode == "atomic":
            print("nothing was written: fix the rows above, or use --partial", file=sys.stderr)
            return EXIT_FAILURE
        if args.dry_run:
            print("dry run: nothing was written", file=sys.stderr)
        elif not result.created and not result.updated and not result.sites_created \
                and not result.sites_updated:
            print("the registry already matches the file: nothing to change", file=sys.stderr)
        return 0

    return asyncio.run(_in_database(settings, work))


def _cmd_devices_export(settings: Settings, args: argparse.Namespace) -> int:
    from devices.registry.csv_import import export_csv

    async def work(session: AsyncSession) -> int:
        data = await export_csv(session)
        if args.file is None:
            sys.stdout.buffer.write(data)
        else:
            args.file.write_bytes(data)
        return 0

    return asyncio.run(_in_database(settings, work))


# --- argument parsing -----------------------------------------------------------------------
def _start_time(text: str) -> int:
    """Epoch milliseconds, or an RFC 3339 time."""
    if text.isdigit():
        return int(text)
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        raise argparse.ArgumentTypeError("expected epoch ms or an RFC 3339 time") from None


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="firewarden",
        description="Ingestion and alerting for smart fire monitoring. Settings come from "
        "FIREWARDEN_* environment variables or a .env file (see README).",
    )
    parser.add_argument("--version", action="version", version=f"firewarden {__version__}")
    commands = parser.add_subparsers(title="commands")

    up = commands.add_parser("up", help="run broker (if none is configured), ingest and API")
    up.add_argument("--demo", action="store_true", help="also run a simulated demo fleet")
    up.set_defaults(handler=_cmd_up)

    worker = commands.add_parser(
        "ingest", help="run an ingest worker alone (needs FIREWARDEN_MQTT_URL); several can "
        "share the load with FIREWARDEN_MQTT_SHARED_GROUP")
    worker.set_defaults(handler=_cmd_ingest)

    show = commands.add_parser("settings", help="print the effective settings (secrets masked)")
    show.set_defaults(handler=_cmd_settings)

    sim = commands.add_parser(
        "simulate", help="publish realistic traffic of a simulated fleet",
        description="Publish a simulated fleet's traffic to an MQTT broker. Stops after "
        "--duration or --count, or on Ctrl-C, then prints a summary.",
    )
    sim.add_argument("--mqtt-url", help="broker (default: FIREWARDEN_MQTT_URL, else the "
                     "embedded broker's address)")
    sim.add_argument("--prefix", help="topic prefix (default: FIREWARDEN_TOPIC_PREFIX)")
    sim.add_argument("--smoke", type=int, default=20, help="smoke detectors (default 20)")
    sim.add_argument("--electrical", type=int, default=10,
                     help="electrical fire monitors (default 10)")
    sim.add_argument("--controlrooms", type=int, default=3, help="control rooms (default 3)")
    sim.add_argument("--sites", type=int, help="sites (default: about one per 20 devices)")
    sim.add_argument("--scenario", action="extend", default=[],
                     type=lambda s: [p.strip() for p in s.split(",") if p.strip()],
                     help="normal, fire, leakage, overheat, tamper, low_battery, offline, "
                     "duty_lapse, flapping, garbage, flood; repeat or comma-separate to combine")
    sim.add_argument("--seed", type=int, default=1, help="same seed, same messages (default 1)")
    sim.add_argument("--speed", type=_positive, default=1.0,
                     help="time compression: simulated seconds per real second (default 1)")
    sim.add_argument("--onset", type=float, default=10.0,
                     help="real seconds before scenarios begin (default 10)")
    sim.add_argument("--start", type=_start_time, default=int(time.time() * 1000),
                     help="timestamp of the run's start, epoch ms or RFC 3339 (default now)")
    sim.add_argument("--duration", type=_positive, help="stop after this many real seconds")
    sim.add_argument("--count", type=int, help="stop after this many messages")
    pace = sim.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=_positive, help="publish at a fixed rate (messages/s) "
                      "regardless of device intervals")
    pace.add_argument("--fast", action="store_true", help="publish as fast as possible")
    sim.add_argument("--qos", type=int, choices=(0, 1, 2), default=1)
    sim.add_argument("--smoke-interval", type=_positive,
                     help="smoke detector report interval, s (default: 4, 6, 12 or 24 h each)")
    sim.add_argument("--electrical-interval", type=_positive, default=60.0,
                     help="electrical monitor report interval, s (default 60)")
    sim.add_argument("--heartbeat-interval", type=_positive, default=60.0,
                     help="control room heartbeat interval, s (default 60)")
    sim.add_argument("--no-answer", action="store_true", help="do not answer duty checks")
    sim.add_argument("--write-registry", type=Path, metavar="FILE",
                     help="also write the fleet as a registry CSV")
    sim.add_argument("--dry-run", action="store_true",
                     help="print messages as JSON lines instead of publishing (100 by default)")
    sim.add_argument("--quiet", action="store_true", help="no progress lines")
    sim.set_defaults(handler=_cmd_simulate)

    keys = commands.add_parser("keys", help="API keys").add_subparsers(title="keys commands")
    create = keys.add_parser("create", help="create a key and print it (shown only once)")
    create.add_argument("--role", required=True,
                        choices=("admin", "operator", "installer", "viewer"))
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.set_defaults(handler=_cmd_keys_create)
    keys.add_parser("list", help="list keys (never the keys themselves)").set_defaults(
        handler=_cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key at once, in every process")
    revoke.add_argument("id", type=int)
    revoke.set_defaults(handler=_cmd_keys_revoke)

    devices = commands.add_parser("devices", help="the device registry").add_subparsers(
        title="devices commands")
    load = devices.add_parser("import", help="register sites and devices from a CSV file "
                              "(docs/registry-csv.md)")
    load.add_argument("file", type=Path)
    load.add_argument("--dry-run", action="store_true", help="validate only")
    load.add_argument("--partial", dest="mode", action="store_const", const="partial",
                      default="atomic", help="write the good rows even if some are bad")
    load.set_defaults(handler=_cmd_devices_import)
    dump = devices.add_parser("export", help="write every device as CSV (import format)")
    dump.add_argument("file", type=Path, nargs="?", help="default: standard output")
    dump.set_defaults(handler=_cmd_devices_export)

    report = commands.add_parser(
        "report", help="the period's figures: alerts, fire alarms by outcome, false-alarm "
        "rate, handling times, availability, duty checks, worst units")
    report.add_argument("--period", choices=sorted(PERIODS), default="week",
                        help="the day, week (7 days) or month (30 days) up to --to")
    report.add_argument("--to", type=_report_end, default=None,
                        help="end of the period (default now), with a time zone")
    report.add_argument("--group-by", choices=["site", "jurisdiction", "category", "kind"])
    report.add_argument("--format", choices=["text", "csv", "json"], default="text")
    report.set_defaults(handler=_cmd_report)
    return parser


if __name__ == "__main__":
    sys.exit(main())
