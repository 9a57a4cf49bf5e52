"""`ops`: the operator's command line."""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

import typer

from contracts.identity import Role
from contracts.principals import PRINCIPALS
from contracts.services import ANALYTICS
from ops import databases, dead_letters, inspection, recovery
from ops.chaos.faults import FaultKind, parse_kinds
from ops.chaos.run import Settings as ChaosSettings
from ops.chaos.run import chaos_run, summary, write_report
from ops.dead_letters import ListedLetter, RedriveReport, Selection
from ops.demo import DemoFailed, Endpoints, fetch_charts, play_example_one
from ops.demo_assisted import play_trainer_assisted_week
from ops.demo_group import play_group_session
from ops.demo_month import month_report, play_hybrid_month
from ops.identity import DEFAULT_TTL_SECONDS, IdentityError, subject_for
from ops.local import browser as browser_tools
from ops.local import operations, platform
from ops.local.config import (
    PlatformConfig,
    config_from_env,
    environment_exports,
    principal_exports,
)
from ops.local.errors import PlatformError
from ops.local.paths import Paths, repository_root
from ops.local.secrets import use_local_kafka_principal, use_local_passwords
from ops.local.urls import redacted
from ops.progress import ProgressPrinter

T = TypeVar("T")

app = typer.Typer(
    help="Operator tooling of the training platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _say(line: str) -> None:
    typer.echo(line)


def _local_config() -> PlatformConfig:
    paths = Paths(repository_root())
    # The local database roles' passwords, for this process and what it starts.
    use_local_passwords(paths)
    config = config_from_env(os.environ, paths)
    if config.kafka.is_local_address:
        # Our own broker authenticates its clients: this tool is its `ops` principal.
        use_local_kafka_principal(paths)
    return config


def _run(action: Callable[[], T]) -> T:
    """Run a command; a failure the operator can act on is one line on stderr, exit 1."""
    # aiokafka logs every refused connection while Kafka is still starting: noise here.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return action()
    except PlatformError as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None


@app.command()
def up(
    infra_only: Annotated[
        bool, typer.Option("--infra-only", help="Start only Kafka and PostgreSQL (and topics).")
    ] = False,
) -> None:
    """Start Kafka, PostgreSQL and the services in the background; wait until all are ready."""
    started = time.monotonic()

    def action() -> PlatformConfig:
        config = _local_config()
        asyncio.run(platform.up(config, _say, os.environ, infra_only=infra_only))
        return config

    config = _run(action)
    for line in platform.summary(config, infra_only=infra_only):
        typer.echo(line)
    typer.echo(f"Ready in {time.monotonic() - started:.1f} s")


@app.command()
def down() -> None:
    """Stop everything `ops up` started. Data stays."""
    _run(lambda: platform.down(_local_config(), _say))


@app.command()
def status() -> None:
    """Kafka, PostgreSQL, and each service: its process, readiness, lag, outbox backlog and
    (credits) parked deductions; then the session id collisions booking dead-lettered."""

    def action() -> list[str]:
        config = _local_config()
        endpoints = operations.endpoints(config, os.environ)
        prefix = operations.topic_prefix(os.environ)

        async def look() -> tuple[list[inspection.ServiceHealth], int | None]:
            bootstrap = config.kafka.bootstrap
            return await asyncio.gather(
                inspection.health(bootstrap, endpoints),
                inspection.session_id_collisions(bootstrap, endpoints, prefix),
            )

        healths, collisions = asyncio.run(look())
        return [
            *platform.infrastructure_status(config),
            "",
            *inspection.health_lines(healths, operations.processes(config)),
            "",
            inspection.collision_line(collisions),
        ]

    for line in _run(action):
        typer.echo(line)


@app.command()
def lag(
    group: Annotated[
        list[str] | None,
        typer.Option("--group", "-g", help="Only this consumer group (repeat for more)."),
    ] = None,
) -> None:
    """Each service's consumer group: committed and end offset, and lag, per partition."""

    def action() -> list[str]:
        config = _local_config()
        consumed = {e.group: e.topics for e in operations.endpoints(config, os.environ)}
        if group:
            unknown = sorted(set(group) - set(consumed))
            if unknown:
                raise PlatformError(
                    f"no service consumes in group {unknown[0]}: the groups are "
                    + ", ".join(consumed)
                )
            consumed = {name: topics for name, topics in consumed.items() if name in group}
        lags = asyncio.run(inspection.lags(config.kafka.bootstrap, consumed))
        if lags is None:
            raise PlatformError(
                f"Kafka at {config.kafka.bootstrap} does not answer: start it with `make up`"
            )
        return inspection.lag_lines(lags)

    for line in _run(action):
        typer.echo(line)


class ServiceName(enum.StrEnum):
    booking = "booking"
    workouts = "workouts"
    credits = "credits"
    analytics = "analytics"


ServiceArgument = Annotated[
    ServiceName, typer.Argument(help="The service: booking, workouts, credits or analytics.")
]
TimeoutOption = Annotated[
    float | None,
    typer.Option(help="Give up following after this many seconds (the service goes on)."),
]


def _recover(operation: Callable[[ProgressPrinter], recovery.Outcome], what: str) -> None:
    printer = ProgressPrinter()

    def action() -> recovery.Outcome:
        try:
            return operation(printer)
        finally:
            printer.finish()

    typer.echo(recovery.summary(_run(action), what))


@app.command()
def replay(
    service: ServiceArgument,
    since: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="TIME",
            help="Only the records since TIME: RFC 3339 with its zone, or a date (UTC).",
        ),
    ] = None,
    topic: Annotated[
        str | None,
        typer.Option(metavar="TOPIC", help="Only this input topic; the others stay as they are."),
    ] = None,
    timeout: TimeoutOption = None,
) -> None:
    """Consume SERVICE's input topics again from the beginning; its state does not change.

    Stops the service, rewinds its consumer group to the earliest offsets (with --from, to
    the first records since TIME; with --topic, of that topic only), starts it and follows
    it until it has caught up."""
    name = service.value

    def operation(printer: ProgressPrinter) -> recovery.Outcome:
        start = recovery.replay_start(since) if since is not None else None
        config = _local_config()
        with platform.exclusive(config.paths, _say):
            return asyncio.run(
                recovery.replay(
                    operations.target(config, name, os.environ),
                    operations.control(config, name, os.environ, _say),
                    printer,
                    since=start,
                    topic=topic,
                    say=_say,
                    give_up_after=timeout,
                )
            )

    _recover(operation, "replayed")


@app.command()
def rebuild(
    service: ServiceArgument,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before dropping the database.")
    ] = False,
    timeout: TimeoutOption = None,
) -> None:
    """Drop SERVICE's database and rebuild it from its input topics.

    Stops the service, drops and creates its database, runs its migrations, rewinds its
    consumer group to the earliest offsets, starts it and follows it until it has caught up.
    Asks first unless --yes is given; refuses without --yes when it cannot ask."""
    name = service.value

    def operation(printer: ProgressPrinter) -> recovery.Outcome:
        config = _local_config()
        target = operations.target(config, name, os.environ)
        admin = operations.database_admin(config, name)
        # Checked before asking: no point confirming what would be refused.
        asyncio.run(recovery.check_kafka(target))
        databases.check_admin(admin, name, target.owner_url)
        if not yes:
            _confirm_rebuild(target)
        with platform.exclusive(config.paths, _say):
            return asyncio.run(
                recovery.rebuild(
                    target,
                    operations.control(config, name, os.environ, _say),
                    admin,
                    config.paths.alembic_ini(name),
                    printer,
                    say=_say,
                    give_up_after=timeout,
                )
            )

    _recover(operation, "rebuilt from")


def _confirm_rebuild(target: recovery.Target) -> None:
    name = databases.database_name(target.database_url)
    if not sys.stdin.isatty():
        raise PlatformError(
            f"refusing to drop the {target.service} database {name} without confirmation: "
            "pass --yes (make rebuild YES=1)"
        )
    question = (
        f"This stops {target.service}, drops its database {name} "
        f"({redacted(target.database_url)}) and rebuilds it from "
        f"{', '.join(target.topics)}. Continue?"
    )
    if not typer.confirm(question, default=False):
        raise PlatformError(f"not rebuilt: {target.service} was left as it was")


#: Long enough for a working day; a token that leaks is useless by the next morning.
MAX_TOKEN_TTL_SECONDS = 24 * 3600
#: A dashboard link is opened at once: its token need not outlive a short visit.
DASHBOARD_TTL_SECONDS = 15 * 60

RoleOption = Annotated[Role, typer.Option(help="What the token lets its bearer do.")]
UserOption = Annotated[
    str | None,
    typer.Option(
        help="The client's or trainer's user id (needed for those roles); "
        "the staff member's or service's name otherwise."
    ),
]


def _ttl_option(default: int) -> object:
    return typer.Option(
        min=1,
        max=MAX_TOKEN_TTL_SECONDS,
        help=f"Seconds until the token expires (default {default}).",
        show_default=False,
    )


def _local_token(config: PlatformConfig, role: Role, user: str | None, ttl: int) -> str:
    """A token signed by the local identity provider, for `role` and `user`."""
    provider = config.identity.local_provider(config.paths)
    try:
        subject = subject_for(role, user)
    except IdentityError as error:
        raise PlatformError(str(error)) from None
    provider.ensure()
    return provider.token(role, subject, ttl=ttl)


@app.command()
def token(
    role: RoleOption,
    user: UserOption = None,
    ttl: Annotated[int, _ttl_option(DEFAULT_TTL_SECONDS)] = DEFAULT_TTL_SECONDS,
) -> None:
    """Print an access token signed by the local identity provider: one line, nothing else,
    so that TOKEN=$(uv run ops token --role staff) works."""
    typer.echo(_run(lambda: _local_token(_local_config(), role, user, ttl)))


def dashboard_url(base_url: str, token: str, client: int | None = None) -> str:
    """The dashboard's address with the token in the fragment: the browser never sends a
    fragment to any server, so the token stays out of access logs and `Referer` headers.
    `client`: the client it opens on (for staff and trainers)."""
    opens_on = "" if client is None else f"&client={client}"
    return f"{base_url}/dashboard#token={token}{opens_on}"


@app.command("dashboard-url")
def dashboard_url_command(
    role: RoleOption,
    user: UserOption = None,
    ttl: Annotated[int, _ttl_option(DASHBOARD_TTL_SECONDS)] = DASHBOARD_TTL_SECONDS,
    client: Annotated[
        int | None,
        typer.Option(min=1, help="The client the page opens on (staff and trainers)."),
    ] = None,
) -> None:
    """Print the address of analytics' web dashboard with a short-lived local token (in the
    fragment, never the query string): one line, to open in a browser."""

    def action() -> str:
        config = _local_config()
        analytics = config.service_for(ANALYTICS)
        token = _local_token(config, role, user, ttl)
        opens_on = client
        if opens_on is None and role == Role.STAFF:
            opens_on = _demo_client(config.paths)
            if opens_on is not None:
                typer.echo(
                    f"The page opens on client {opens_on}, the demo's (--client for another).",
                    err=True,
                )
        return dashboard_url(analytics.base_url, token, opens_on)

    typer.echo(_run(action))


def _demo_client(paths: Paths) -> int | None:
    """The client `ops demo` played Example 1 for, if it ran on this platform."""
    try:
        recorded = paths.demo_client.read_text().strip()
    except FileNotFoundError:
        return None
    return int(recorded) if recorded.isdecimal() else None


def _record_demo_client(paths: Paths, user_id: int) -> None:
    paths.demo_client.parent.mkdir(parents=True, exist_ok=True)
    paths.demo_client.write_text(f"{user_id}\n")


@app.command()
def browser() -> None:
    """Install Debian's Chromium and chromedriver for the browser tests when missing."""

    def action() -> list[str]:
        return browser_tools.ensure_browser(Paths(repository_root()), _say)

    chromium, driver = _run(action)
    typer.echo(f"Chromium: {chromium}, driver {driver}")


PrincipalName = enum.StrEnum(  # type: ignore[misc]
    "PrincipalName", {principal.name: principal.name for principal in PRINCIPALS}
)


@app.command()
def env(
    as_principal: Annotated[
        PrincipalName | None,
        typer.Option(
            "--as",
            help="Print only what a client of Kafka needs to connect as this principal "
            "(bootstrap servers and credentials), for another platform service's producer.",
        ),
    ] = None,
) -> None:
    """Print the settings of the platform as shell exports: eval "$(ops env)"."""

    def action() -> list[str]:
        config = _local_config()
        if as_principal is None:
            return environment_exports(config)
        return principal_exports(config, str(as_principal))

    for line in _run(action):
        typer.echo(line)


def demo_endpoints(config: PlatformConfig) -> Endpoints:
    urls = {settings.service.name: settings.base_url for settings in config.services}
    provider = config.identity.local_provider(config.paths)
    return Endpoints(
        tokens=provider.token,
        booking=urls["booking"],
        workouts=urls["workouts"],
        credits=urls["credits"],
        analytics=urls["analytics"],
        kafka_bootstrap=config.kafka.bootstrap,
        topic_prefix=os.environ.get("KAFKA_TOPIC_PREFIX", ""),
    )


@app.command()
def demo() -> None:
    """Play the spec's Example 1 on the running platform and print the charts; then a
    hybrid month under a late-cancel policy, and its ledger; a group session of five; and a
    trainer-assisted week."""
    config = _run(_local_config)
    endpoints = _run(lambda: demo_endpoints(config))

    async def play() -> str:
        user_id = await play_example_one(endpoints, _say)
        _record_demo_client(config.paths, user_id)
        typer.echo()
        typer.echo(await fetch_charts(endpoints, user_id))
        typer.echo(
            "\nIn the browser: open the link `uv run ops dashboard-url --role staff` prints "
            f"(it opens on client {user_id})"
        )
        month_client = await play_hybrid_month(endpoints, _say)
        typer.echo()
        typer.echo(await month_report(endpoints, month_client))
        typer.echo()
        typer.echo(await play_group_session(endpoints, _say))
        return await play_trainer_assisted_week(endpoints, _say)

    def action() -> str:
        try:
            return asyncio.run(play())
        except DemoFailed as failure:
            raise PlatformError(f"the demo failed: {failure}") from None

    charts = _run(action)
    typer.echo()
    typer.echo(charts)


# --- chaos ---------------------------------------------------------------------------------


@app.command()
def chaos(
    duration: Annotated[
        float, typer.Option(min=5, help="Seconds of workload (the faults fall within them).")
    ] = 600,
    rate: Annotated[float, typer.Option(min=1, help="Trainer-led sessions per second.")] = 40,
    faults: Annotated[
        str,
        typer.Option(
            help="Fault kinds, comma-separated, or all: "
            + ", ".join(kind.value for kind in FaultKind)
        ),
    ] = "all",
    faults_per_kind: Annotated[int, typer.Option(min=0, help="Faults of each kind.")] = 20,
    seed: Annotated[
        int | None, typer.Option(help="Replays a run: the same plan and faults. Random if unset.")
    ] = None,
    clients: Annotated[int, typer.Option(min=1, help="Clients sharing the sessions.")] = 400,
    credits_replicas: Annotated[int, typer.Option(min=1, help="Processes of credits.")] = 2,
    keep: Annotated[bool, typer.Option(help="Keep the stage's directory (its logs).")] = False,
) -> None:
    """Play a workload on a platform of its own while injecting faults (services killed and
    paused, the broker killed, PostgreSQL crashed, connections cut), then check every
    balance, ledger, session and usage against the truth. Exits 1 on anything lost,
    duplicated or wrong, or a service not ready again within 30 s of a fault."""
    try:
        kinds = parse_kinds(faults)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--faults") from None
    settings = ChaosSettings(
        seed=seed if seed is not None else random.randrange(2**31),
        duration=duration,
        rate=rate,
        kinds=kinds,
        faults_per_kind=faults_per_kind,
        clients=clients,
        credits_replicas=credits_replicas,
        keep=keep,
    )
    main = Paths(repository_root())
    report = _run(lambda: asyncio.run(chaos_run(main, settings, _say)))
    destination = main.local / "chaos" / f"report-{settings.seed}.json"
    write_report(report, destination)
    for line in summary(report):
        typer.echo(line)
    typer.echo(f"report: {destination}; replay with --seed {settings.seed}")
    if not report.passed:
        raise typer.Exit(1)


# --- dead letters ---------------------------------------------------------------------------

dlq_app = typer.Typer(
    help="Dead letters: list them, send them back to their topic once their cause is fixed.",
    no_args_is_help=True,
)
app.add_typer(dlq_app, name="dlq")

TopicArgument = Annotated[
    str,
    typer.Argument(help="The topic, with or without .dlq (behind KAFKA_TOPIC_PREFIX, if set)."),
]
ConsumerOption = Annotated[
    str | None,
    typer.Option("--consumer", "-c", help="Only the letters of this consumer (its group)."),
]
EventIdOption = Annotated[
    list[str] | None,
    typer.Option("--event-id", "-e", help="Only the letters of this event id (repeatable)."),
]


def _selection(consumer: str | None, event_ids: list[str] | None) -> Selection:
    prefix = operations.topic_prefix(os.environ)
    return Selection(consumer=consumer, event_ids=frozenset(event_ids or ()), prefix=prefix)


def _moment(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "?"


def _event(letter: dead_letters.DeadLetter) -> str:
    if letter.event_type is None and letter.event_id is None:
        return "(not a CloudEvent)"
    return f"{letter.event_type or '?'} {letter.event_id or '?'}"


def _origin(letter: dead_letters.DeadLetter) -> str:
    if letter.origin_topic is None:
        return "(unknown)"
    return f"{letter.origin_topic} {letter.origin_partition}@{letter.origin_offset}"


def letter_lines(listed: list[ListedLetter]) -> list[str]:
    rows = [["LETTER", "DEAD-LETTERED (UTC)", "ORIGIN", "CONSUMER", "EVENT", "STATE", "REASON"]]
    rows += [
        [
            f"{item.letter.partition}@{item.letter.offset}",
            _moment(item.letter.timestamp),
            _origin(item.letter),
            item.letter.consumer,
            _event(item.letter),
            "redriven" if item.redriven else "waiting",
            item.letter.reason,
        ]
        for item in listed
    ]
    redriven = sum(item.redriven for item in listed)
    return [*inspection.table(rows), "", f"{len(listed)} dead letters, {redriven} redriven"]


@dlq_app.command("list")
def dlq_list(
    topic: TopicArgument, consumer: ConsumerOption = None, event_id: EventIdOption = None
) -> None:
    """The dead letters of TOPIC: why, from where, which consumer, which event, when."""

    def action() -> list[str]:
        config = _local_config()
        prefix = operations.topic_prefix(os.environ)
        listed = asyncio.run(
            dead_letters.list_dead_letters(
                config.kafka.bootstrap, topic, prefix, _selection(consumer, event_id)
            )
        )
        dlq = dead_letters.dead_letter_topic(topic, prefix)
        return [dlq, *letter_lines(listed)] if listed else [f"{dlq}: no dead letters"]

    for line in _run(action):
        typer.echo(line)


def redrive_lines(report: RedriveReport) -> list[str]:
    verb = "would redrive" if report.dry_run else "redriven"
    lines = [
        f"{verb} {report.topic} {letter.partition}@{letter.offset} to {_origin(letter)}: "
        f"{_event(letter)} (dead-lettered by {letter.consumer}: {letter.reason})"
        for letter in report.redriven
    ]
    lines += [
        f"unroutable {report.topic} {letter.partition}@{letter.offset}: its origin "
        f"{letter.origin_topic or '(none)'} is not a topic on the broker; left where it is"
        for letter in report.unroutable
    ]
    lines += [
        f"refused {report.topic} {letter.partition}@{letter.offset}: its dlq-topic header "
        f"names {letter.origin_topic}, but a letter of {report.topic} can only go back to "
        f"{report.topic.removesuffix('.dlq')}; left where it is"
        for letter in report.misrouted
    ]
    counts = [f"{len(report.redriven)} {verb}"]
    if report.misrouted:
        counts.append(f"{len(report.misrouted)} refused (naming another topic)")
    if report.same_record:
        counts.append(f"{len(report.same_record)} of another consumer for a record sent anyway")
    if report.earlier:
        counts.append(f"{report.earlier} redriven before")
    if report.not_selected:
        counts.append(f"{report.not_selected} not selected")
    if report.deferred:
        counts.append(f"{report.deferred} left for the next run (run it again)")
    lines.append(", ".join(counts))
    return lines


@dlq_app.command("redrive")
def dlq_redrive(
    topic: TopicArgument,
    consumer: ConsumerOption = None,
    event_id: EventIdOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Show what would be sent; send nothing.")
    ] = False,
) -> None:
    """Publish TOPIC's dead letters again to their origin topic, once each.

    Each goes back with its original key and headers (the dlq-* ones removed); consumers
    that already applied its event skip it. Letters redriven before are not sent again."""

    def action() -> list[str]:
        config = _local_config()
        prefix = operations.topic_prefix(os.environ)
        report = asyncio.run(
            dead_letters.redrive(
                config.kafka.bootstrap,
                topic,
                prefix,
                _selection(consumer, event_id),
                dry_run=dry_run,
            )
        )
        return redrive_lines(report)

    for line in _run(action):
        typer.echo(line)
