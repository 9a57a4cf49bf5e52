"""`ops`: the operator's command line."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from ops.demo import DemoFailed, Endpoints, fetch_charts, play_example_one
from ops.local import platform
from ops.local.config import PlatformConfig, config_from_env, environment_exports
from ops.local.errors import PlatformError
from ops.local.paths import Paths, repository_root

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
    return config_from_env(os.environ, Paths(repository_root()))


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
    """Which of the local platform's processes are running."""
    for line in _run(lambda: platform.status(_local_config())):
        typer.echo(line)


@app.command()
def env() -> None:
    """Print the settings of the platform as shell exports: eval "$(ops env)"."""
    for line in _run(lambda: environment_exports(_local_config())):
        typer.echo(line)


def demo_endpoints(config: PlatformConfig) -> Endpoints:
    urls = {settings.service.name: settings.base_url for settings in config.services}
    return Endpoints(
        booking=urls["booking"],
        workouts=urls["workouts"],
        credits=urls["credits"],
        analytics=urls["analytics"],
        kafka_bootstrap=config.kafka.bootstrap,
        topic_prefix=os.environ.get("KAFKA_TOPIC_PREFIX", ""),
    )


@app.command()
def demo() -> None:
    """Play the spec's Example 1 on the running platform and print the charts."""
    config = _local_config()
    endpoints = demo_endpoints(config)

    async def play() -> str:
        user_id = await play_example_one(endpoints, _say)
        return await fetch_charts(endpoints, user_id)

    def action() -> str:
        try:
            return asyncio.run(play())
        except DemoFailed as failure:
            raise PlatformError(f"the demo failed: {failure}") from None

    charts = _run(action)
    typer.echo()
    typer.echo(charts)
