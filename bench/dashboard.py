"""The dashboard in headless Chromium: how soon it paints, and how soon a logged workout shows.

    uv run python bench/dashboard.py                       # 20 loads and 50 updates, 3 runs
    uv run python bench/dashboard.py --loads 5 --updates 10 --runs 1

A fresh client with one solo workout opens `/dashboard` on the running platform (Debian's
Chromium, headless, as the browser tests drive it). A load: the page opened anew; its first
paint (`first-contentful-paint`, the browser's own figure) and the moment its bars are drawn
(recorded in the page by an observer DevTools installs before the page's own script). An
update: a solo workout `POST`ed to the workouts service while the page is open; the delay
from the POST's answer until the page shows the new count (a WebDriver round trip of a few
ms included). The medians of the runs' percentiles are reported (p99 is nearest-rank).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Any

import cli
import discovery
import httpx
import output
import stats
import workload
from selenium.webdriver.remote.webdriver import WebDriver

from contracts.identity import Role
from testkit.browser import headless_chromium

#: The issue's targets: first paint under 300 ms, a change shown within a second.
TARGET_FIRST_PAINT_MS = 300.0
TARGET_UPDATE_MS = 1000.0

#: Installed before any script of the page: when the bars first appear, in the page's clock.
RECORD_BARS_DRAWN = """
new MutationObserver((_, observer) => {
  if (document.querySelector("#distribution g[data-kind]")) {
    window.barsDrawnAt = performance.now();
    observer.disconnect();
  }
}).observe(document, {subtree: true, childList: true});
"""
#: Resolves with the solo count once it reaches `arguments[0]`.
WAIT_FOR_SOLO_COUNT = """
const [expected, done] = arguments;
const count = () => {
  const bar = document.querySelector('#distribution g[data-kind="solo"]');
  return bar ? Number(bar.dataset.count) : -1;
};
if (count() >= expected) { done(count()); return; }
new MutationObserver((_, observer) => {
  if (count() >= expected) { observer.disconnect(); done(count()); }
}).observe(document.getElementById("distribution"), {subtree: true, childList: true});
"""


@dataclass
class Run:
    first_paint_ms: list[float] = field(default_factory=list)
    bars_drawn_ms: list[float] = field(default_factory=list)
    update_ms: list[float] = field(default_factory=list)

    def figure(self, name: str, percent: float) -> float:
        values: list[float] = getattr(self, name)
        return stats.percentile(values, percent)


#: The first paint and the moment the bars were drawn, each null until it has happened.
READ_LOAD = """
const paint = performance.getEntriesByName("first-contentful-paint")[0];
return [paint ? paint.startTime : null, window.barsDrawnAt ?? null];
"""


def load(browser: WebDriver, url: str) -> tuple[float, float]:
    """Open the page anew; its first paint and its bars drawn, in ms from navigation."""
    browser.get("about:blank")
    browser.get(url)
    deadline = time.monotonic() + 30
    while True:
        first_paint, bars_drawn = browser.execute_script(READ_LOAD)
        if first_paint is not None and bars_drawn is not None:
            return float(first_paint), float(bars_drawn)
        if time.monotonic() > deadline:
            status = browser.execute_script("return document.getElementById('status')?.textContent")
            raise TimeoutError(f"the dashboard drew no bars within 30 s: {status!r}")
        time.sleep(0.01)


def one_run(platform: discovery.Platform, arguments: argparse.Namespace, number: int) -> Run:
    run = Run()
    client = workload.SessionIds.fresh(1).first_client
    headers = platform.bearer(Role.CLIENT, client)
    token = headers["Authorization"].removeprefix("Bearer ")
    url = f"{platform.base_url('analytics')}/dashboard#token={token}"
    with (
        httpx.Client(base_url=platform.base_url("workouts"), headers=headers) as workouts,
        headless_chromium() as browser,
    ):
        solo = 0

        def log_solo() -> float:
            nonlocal solo
            body = {**workload.solo_workout(client), "title": f"Sample {solo}"}
            response = workouts.post("/api/workout/sessions", json=body)
            response.raise_for_status()
            solo += 1
            return time.monotonic()

        log_solo()
        browser.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_BARS_DRAWN}
        )
        browser.set_script_timeout(30)
        browser.get(url)  # takes the token into the tab; each load reads it from there
        browser.execute_async_script(WAIT_FOR_SOLO_COUNT, solo)
        dashboard = url.split("#", 1)[0]
        for sample in range(arguments.loads):
            output.status(f"run {number}: load {sample + 1} of {arguments.loads}")
            first_paint, bars_drawn = load(browser, dashboard)
            run.first_paint_ms.append(first_paint)
            run.bars_drawn_ms.append(bars_drawn)
        browser.execute_async_script(WAIT_FOR_SOLO_COUNT, solo)
        for sample in range(arguments.updates):
            output.status(f"run {number}: update {sample + 1} of {arguments.updates}")
            answered = log_solo()
            browser.execute_async_script(WAIT_FOR_SOLO_COUNT, solo)
            run.update_ms.append((time.monotonic() - answered) * 1000)
    output.clear_status()
    print(
        f"run {number}: first paint p50 {run.figure('first_paint_ms', 50):.0f} ms, update p50 "
        f"{run.figure('update_ms', 50):.0f} ms, p99 {run.figure('update_ms', 99):.0f} ms"
    )
    return run


NAMES = {
    "first_paint_ms": "first paint",
    "bars_drawn_ms": "bars drawn (from navigation)",
    "update_ms": "a workout shown (from the POST's answer)",
}


def report(runs: list[Run], arguments: argparse.Namespace) -> tuple[list[str], dict[str, Any]]:
    summary = {
        f"{name}_p{percent}": stats.median(r.figure(name, percent) for r in runs)
        for name in NAMES
        for percent in (50, 99)
    }
    targets = {"first_paint_ms": TARGET_FIRST_PAINT_MS, "update_ms": TARGET_UPDATE_MS}
    rows = []
    for name, label in NAMES.items():
        target = targets.get(name)
        rows.append(
            [
                label,
                f"{summary[f'{name}_p50']:.0f} ms",
                f"{summary[f'{name}_p99']:.0f} ms",
                "" if target is None else f"p99 < {target:g} ms",
                "" if target is None else output.verdict(summary[f"{name}_p99"] < target),
            ]
        )
    lines = [
        f"{arguments.loads} loads and {arguments.updates} updates per run, {len(runs)} runs, "
        f"medians; headless Chromium; {output.machine_summary()}, {output.today()}",
        "",
        *output.table(["measure", "p50", "p99", "target", "met"], rows, align="lrrll"),
    ]
    return lines, summary


def main() -> None:
    parser = cli.arguments(__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--loads", type=cli.positive, default=20, help="page loads per run")
    parser.add_argument("--updates", type=cli.positive, default=50, help="updates per run")
    arguments = parser.parse_args()

    async def bench() -> list[Run]:
        platform = discovery.find_platform()
        await discovery.require_ready(platform, ["workouts", "analytics"])
        return [one_run(platform, arguments, n) for n in range(1, arguments.runs + 1)]

    runs = cli.run(bench())
    lines, summary = report(runs, arguments)
    output.finish(
        arguments,
        "dashboard",
        lines,
        [vars(r) for r in runs],
        summary,
        {"first_paint_ms_p99": TARGET_FIRST_PAINT_MS, "update_ms_p99": TARGET_UPDATE_MS},
    )


if __name__ == "__main__":
    main()
