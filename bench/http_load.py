"""Requests per second and p99 latency of the workouts service's `POST
/api/workout/sessions` under load, beside a bare FastAPI + psycopg insert endpoint, and what
verifying the caller's token costs.

    uv run python bench/http_load.py                       # wrk -t2 -c32 -d15s, 3 runs
    uv run python bench/http_load.py --duration 5 --runs 1 --json http.json

`wrk --latency` POSTs the same solo workout (free: no booking, no credit) again and again,
as its client would (a client token of the local identity provider): first to the running
workouts service, then to `bench/bare_api.py` twice, without and with the services' token
verification (`make bench-wrk` installs wrk). The bare endpoints run as processes of the
benchmark's own (uvicorn with uvloop and httptools, one worker, on a free port) against a
scratch database it creates and drops. Each run measures the three, each after a short
warm-up and on a settled platform; the medians of the runs are reported with the median of
the per-run ratios.

What verification costs a request is measured without queueing: one connection at a time
(`wrk -t1 -c1`), the bare endpoint without a token, verifying the same token each time (as
an app sends it), and verifying a new token each time (more tokens than the services
remember, in turn: every signature checked). It is also timed in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cli
import discovery
import httpx
import output
import stats
import workload
import wrk

from contracts.identity import Role
from ops.local.errors import PlatformError
from servicekit.auth import VERIFIED_TOKENS_KEPT, KeySet, TokenVerifier, jwks_from_file
from servicekit.db import libpq_url

TARGET_RPS = 1_000.0
TARGET_P99_MS = 50.0
TARGET_OF_BARE = 0.7
#: What verifying a token may add to a request (the issue that brought it in).
TARGET_VERIFY_MS = 0.5
#: Distinct tokens verified in-process, each for the first time.
FRESH_TOKENS = 300
#: Tokens sent in turn to verify a new one each time: more than the verifier remembers.
ROTATED_TOKENS = VERIFIED_TOKENS_KEPT + 500
PATH = "/api/workout/sessions"
BARE_API = Path(__file__).with_name("bare_api.py")
BARE_READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Single:
    """The bare endpoint one request at a time: no token, the same one, a new one each."""

    bare: wrk.WrkResult
    same_token: wrk.WrkResult
    new_tokens: wrk.WrkResult

    @property
    def same_token_ms(self) -> float:
        return self.same_token.p50_ms - self.bare.p50_ms

    @property
    def new_token_ms(self) -> float:
        return self.new_tokens.p50_ms - self.bare.p50_ms


@dataclass(frozen=True)
class Run:
    service: wrk.WrkResult
    bare: wrk.WrkResult
    #: The bare endpoint verifying each request's token as the services do.
    bare_verified: wrk.WrkResult
    single: Single

    @property
    def of_bare(self) -> float:
        return self.service.requests_per_second / self.bare.requests_per_second

    def as_json(self) -> dict[str, Any]:
        return {
            "service": asdict(self.service),
            "bare": asdict(self.bare),
            "bare_verified": asdict(self.bare_verified),
            "single": asdict(self.single),
            "of_bare": self.of_bare,
            "same_token_ms": self.single.same_token_ms,
            "new_token_ms": self.single.new_token_ms,
        }


@dataclass(frozen=True)
class InProcess:
    """Verifying one token in the benchmark's own process, medians in microseconds."""

    first_time_us: float
    seen_before_us: float


async def verify_in_process(platform: discovery.Platform) -> InProcess:
    identity = platform.config.identity
    assert identity.jwks_file is not None  # the local provider's (`bearer` requires it)
    verifier = TokenVerifier(
        KeySet(jwks_from_file(identity.jwks_file)),
        issuer=identity.issuer,
        audience=identity.audience,
    )
    tokens = [platform.bearer(Role.CLIENT, n)["Authorization"][7:] for n in range(1, FRESH_TOKENS)]
    await verifier.caller(tokens[0])  # reads the key set

    async def timed(token: str) -> float:
        started = time.perf_counter()
        await verifier.caller(token)
        return (time.perf_counter() - started) * 1e6

    first = [await timed(token) for token in tokens[1:]]
    again = [await timed(tokens[0]) for _ in tokens[1:]]
    return InProcess(stats.median(first), stats.median(again))


@asynccontextmanager
async def bare_endpoint(
    platform: discovery.Platform, *, verify: bool = False
) -> AsyncIterator[str]:
    """Serve bench/bare_api.py on a free port against a scratch database (beside the
    workouts database, as its owner: the endpoint creates its table); yields the endpoint's
    URL. Both go at the end.
    `verify`: with the services' token verification, trusting the local identity provider."""
    scratch = discovery.ScratchDatabase.beside(
        platform.config, "workouts", f"bench_bare_{uuid.uuid4().hex[:8]}"
    )
    admin = platform.admin("workouts")
    port = discovery.free_port()
    log = platform.paths.log("bench-bare")
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BENCH_BARE_DATABASE_URL": libpq_url(scratch.owner_url)}
    identity = platform.config.identity
    trusted = ["--issuer", identity.issuer, "--audience", identity.audience]
    verifying = ["--verify-with", str(identity.jwks_file), *trusted] if verify else []
    command = [str(BARE_API), "--port", str(port), *verifying]
    try:
        await asyncio.to_thread(discovery.prepare_database, admin, scratch, migrate=False)
        with log.open("ab") as output:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *command,
                env=env,
                stdout=output,
                stderr=output,
                start_new_session=True,
            )
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_until_serving(base, process, log)
            yield base + PATH
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()
    finally:
        await asyncio.to_thread(discovery.drop, admin, scratch.owner_url)


async def wait_until_serving(base: str, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + BARE_READY_TIMEOUT
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if process.returncode is not None:
                raise PlatformError(f"the bare endpoint exited: read {log}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(base + "/health")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise PlatformError(f"the bare endpoint did not answer within 60 s: read {log}")
            await asyncio.sleep(0.2)


async def one_at_a_time(
    url: str, body: dict[str, Any], arguments: argparse.Namespace, **authorization: Any
) -> wrk.WrkResult:
    """`wrk -t1 -c1`: each request's latency without a queue in front of it."""
    return await wrk.run_wrk(
        url,
        body,
        duration=arguments.single_duration,
        connections=1,
        threads=1,
        **authorization,
    )


async def load(
    url: str, body: dict[str, Any], headers: dict[str, str], arguments: argparse.Namespace
) -> wrk.WrkResult:
    if arguments.warmup > 0:
        await wrk.run_wrk(
            url,
            body,
            duration=arguments.warmup,
            headers=headers,
            connections=arguments.connections,
            threads=arguments.threads,
        )
    return await wrk.run_wrk(
        url,
        body,
        duration=arguments.duration,
        headers=headers,
        connections=arguments.connections,
        threads=arguments.threads,
    )


def describe(result: wrk.WrkResult) -> str:
    errors = f", {result.errors:,} errors" if result.errors else ""
    return (
        f"{result.requests_per_second:,.0f} requests/s, p50 {result.p50_ms:.1f} ms, "
        f"p99 {result.p99_ms:.1f} ms ({result.requests:,} requests{errors})"
    )


async def bench(arguments: argparse.Namespace) -> tuple[list[Run], InProcess]:
    platform = discovery.find_platform()
    await discovery.require_ready(platform, ["workouts"])
    wrk.require_wrk()
    client = random.randrange(workload.FIRST_BENCH_ID, workload.ID_SPAN)
    body = workload.solo_workout(client)
    as_client = platform.bearer(Role.CLIENT, client)
    rotated = [
        platform.bearer(Role.CLIENT, client)["Authorization"][7:] for _ in range(ROTATED_TOKENS)
    ]
    service_url = platform.base_url("workouts") + PATH
    runs = []
    async with (
        bare_endpoint(platform) as bare_url,
        bare_endpoint(platform, verify=True) as verified_url,
    ):
        for number in range(1, arguments.runs + 1):
            await discovery.settle(platform, within=arguments.settle_timeout)
            service = await load(service_url, body, as_client, arguments)
            print(f"run {number}, workouts service: {describe(service)}")
            await discovery.settle(platform, within=arguments.settle_timeout)
            bare = await load(bare_url, body, {}, arguments)
            print(f"run {number}, bare endpoint: {describe(bare)}")
            verified = await load(verified_url, body, as_client, arguments)
            print(f"run {number}, bare endpoint verifying tokens: {describe(verified)}")
            single = Single(
                await one_at_a_time(bare_url, body, arguments),
                await one_at_a_time(verified_url, body, arguments, headers=as_client),
                await one_at_a_time(verified_url, body, arguments, bearer_tokens=rotated),
            )
            print(
                f"run {number}, one request at a time: p50 {single.bare.p50_ms:.2f} ms "
                f"without a token, {single.same_token.p50_ms:.2f} ms verifying the same token, "
                f"{single.new_tokens.p50_ms:.2f} ms verifying a new one each time"
            )
            runs.append(Run(service, bare, verified, single))
    in_process = await verify_in_process(platform)
    return runs, in_process


def medians(runs: list[Run], in_process: InProcess) -> dict[str, float]:
    return {
        "bare_verified_rps": stats.median(r.bare_verified.requests_per_second for r in runs),
        "bare_verified_p50_ms": stats.median(r.bare_verified.p50_ms for r in runs),
        "bare_verified_p99_ms": stats.median(r.bare_verified.p99_ms for r in runs),
        "single_bare_p50_ms": stats.median(r.single.bare.p50_ms for r in runs),
        "single_same_token_p50_ms": stats.median(r.single.same_token.p50_ms for r in runs),
        "single_new_token_p50_ms": stats.median(r.single.new_tokens.p50_ms for r in runs),
        "same_token_ms": stats.median(r.single.same_token_ms for r in runs),
        "new_token_ms": stats.median(r.single.new_token_ms for r in runs),
        "verify_first_time_us": in_process.first_time_us,
        "verify_seen_before_us": in_process.seen_before_us,
        "service_rps": stats.median(r.service.requests_per_second for r in runs),
        "service_p50_ms": stats.median(r.service.p50_ms for r in runs),
        "service_p99_ms": stats.median(r.service.p99_ms for r in runs),
        "bare_rps": stats.median(r.bare.requests_per_second for r in runs),
        "bare_p50_ms": stats.median(r.bare.p50_ms for r in runs),
        "bare_p99_ms": stats.median(r.bare.p99_ms for r in runs),
        "service_of_bare": stats.median(r.of_bare for r in runs),
    }


def report(runs: list[Run], in_process: InProcess, arguments: argparse.Namespace) -> list[str]:
    summary = medians(runs, in_process)
    service_met = (
        summary["service_rps"] >= TARGET_RPS and summary["service_p99_ms"] <= TARGET_P99_MS
    )
    errors = sum(r.service.errors + r.bare.errors + r.bare_verified.errors for r in runs)
    lines = [
        f"POST {PATH}, wrk -t{arguments.threads} -c{arguments.connections} "
        f"-d{arguments.duration:g}s (after {arguments.warmup:g} s of warm-up), {len(runs)} runs, "
        f"medians; {output.machine_summary()}, {output.today()}",
        "",
        *output.table(
            ["endpoint", "requests/s", "p50", "p99", "target", "met"],
            [
                [
                    "workouts service",
                    f"{summary['service_rps']:,.0f}",
                    f"{summary['service_p50_ms']:.1f} ms",
                    f"{summary['service_p99_ms']:.1f} ms",
                    f"≥ {TARGET_RPS:,.0f} rps, p99 ≤ {TARGET_P99_MS:g} ms",
                    output.verdict(service_met),
                ],
                [
                    "bare FastAPI + psycopg insert",
                    f"{summary['bare_rps']:,.0f}",
                    f"{summary['bare_p50_ms']:.1f} ms",
                    f"{summary['bare_p99_ms']:.1f} ms",
                    "",
                    "",
                ],
                [
                    "bare, verifying the token",
                    f"{summary['bare_verified_rps']:,.0f}",
                    f"{summary['bare_verified_p50_ms']:.1f} ms",
                    f"{summary['bare_verified_p99_ms']:.1f} ms",
                    "",
                    "",
                ],
                [
                    "service / bare",
                    f"{summary['service_of_bare']:.2f}",
                    "",
                    "",
                    f"≥ {TARGET_OF_BARE:g}",
                    output.verdict(summary["service_of_bare"] >= TARGET_OF_BARE),
                ],
            ],
            align="lrrrll",
        ),
        "",
        "One request at a time (wrk -t1 -c1), the bare endpoint:",
        "",
        *output.table(
            ["request", "p50", "added by verification", "target", "met"],
            [
                ["without a token", f"{summary['single_bare_p50_ms']:.2f} ms", "", "", ""],
                [
                    "verifying the same token each time",
                    f"{summary['single_same_token_p50_ms']:.2f} ms",
                    f"{summary['same_token_ms']:.2f} ms",
                    f"< {TARGET_VERIFY_MS:g} ms",
                    output.verdict(summary["same_token_ms"] < TARGET_VERIFY_MS),
                ],
                [
                    "verifying a new token each time",
                    f"{summary['single_new_token_p50_ms']:.2f} ms",
                    f"{summary['new_token_ms']:.2f} ms",
                    f"< {TARGET_VERIFY_MS:g} ms",
                    output.verdict(summary["new_token_ms"] < TARGET_VERIFY_MS),
                ],
            ],
            align="lrrll",
        ),
        "",
        f"Verifying one token in-process (medians of {FRESH_TOKENS - 2} tokens): "
        f"{summary['verify_first_time_us']:.0f} µs the first time it is seen (signature and "
        f"claims), {summary['verify_seen_before_us']:.1f} µs after that (remembered).",
        "",
        *output.table(
            [
                "run",
                "service rps",
                "service p50",
                "service p99",
                "bare rps",
                "bare p50",
                "verifying p50",
                "service / bare",
            ],
            [
                [
                    str(n),
                    f"{r.service.requests_per_second:,.0f}",
                    f"{r.service.p50_ms:.1f} ms",
                    f"{r.service.p99_ms:.1f} ms",
                    f"{r.bare.requests_per_second:,.0f}",
                    f"{r.bare.p50_ms:.2f} ms",
                    f"{r.bare_verified.p50_ms:.2f} ms",
                    f"{r.of_bare:.2f}",
                ]
                for n, r in enumerate(runs, 1)
            ],
        ),
    ]
    if errors:
        lines += [
            "",
            f"{errors:,} responses were errors (non-2xx or socket errors): read "
            ".local/log/workouts.log and .local/log/bench-bare.log.",
        ]
    return lines


def main() -> None:
    parser = cli.arguments(__doc__.split("\n\n")[0])
    cli.wrk_arguments(parser, duration=15.0)
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="wrk before each measurement, not counted (0: none)",
    )
    parser.add_argument(
        "--single-duration",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="wrk -t1 -c1 per endpoint, for what verification adds to one request",
    )
    arguments = parser.parse_args()
    runs, in_process = cli.run(bench(arguments))
    output.finish(
        arguments,
        "http",
        report(runs, in_process, arguments),
        [r.as_json() for r in runs],
        medians(runs, in_process),
        {
            "service_rps": TARGET_RPS,
            "service_p99_ms": TARGET_P99_MS,
            "service_of_bare": TARGET_OF_BARE,
            "same_token_ms": TARGET_VERIFY_MS,
            "new_token_ms": TARGET_VERIFY_MS,
        },
    )


if __name__ == "__main__":
    main()
