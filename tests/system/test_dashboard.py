"""The dashboard in a real browser (headless Chromium) against the running platform: the
spec's Example 2 as bars, figures and tooltips, who sees what, and live updates. The browser
fixture fails any test whose pages request anything from another host."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from contracts.identity import Role
from ops.demo import Endpoints

from .platform import IsolatedPlatform
from .stories import play_example_two
from .test_examples import endpoints

pytestmark = [pytest.mark.infra, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
#: The README's picture of the dashboard, taken here so it always shows the page as it is.
SCREENSHOT = ROOT / "docs" / "dashboard.png"
CLIENT, OTHER_CLIENT = 123, 124
#: The spec's colours: green for solo workouts, orange for trainer sessions.
SOLO_GREEN, TRAINER_ORANGE = "#4CAF50", "#FF9800"


def open_dashboard(
    browser: WebDriver,
    platform: IsolatedPlatform,
    role: Role,
    subject: int,
    *,
    client: int | None = None,
) -> None:
    """Open the page as `ops dashboard-url` links it: the token (and the client to open on)
    in the fragment."""
    token = platform.tokens(role, str(subject))
    opens_on = "" if client is None else f"&client={client}"
    browser.get(f"{platform.url('analytics')}/dashboard#token={token}{opens_on}")


def wait_for(browser: WebDriver, check: Any, within: float = 30) -> Any:
    # A page that reloads (a new sign-in link) leaves elements found before it stale.
    waiting = WebDriverWait(
        browser, within, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)
    )
    return waiting.until(lambda _: check())


def bars(browser: WebDriver) -> dict[str, dict[str, str]]:
    """Each workout kind's bar: its count, percentage and colour, read in one go (the page
    redraws its bars on every update)."""
    found: dict[str, dict[str, str]] = browser.execute_script(
        """
        const found = {};
        for (const group of document.querySelectorAll("#distribution g[data-kind]")) {
          found[group.dataset.kind] = {
            count: group.dataset.count,
            percentage: group.dataset.percentage,
            colour: group.querySelector("rect").getAttribute("fill").toUpperCase(),
          };
        }
        return found;
        """
    )
    return found


def credits_shown(browser: WebDriver) -> dict[str, str]:
    shown: dict[str, str] = browser.execute_script(
        """
        const shown = {};
        for (const figure of ["used", "remaining", "total"]) {
          shown[figure] = document.getElementById("credits-" + figure).textContent;
        }
        return shown;
        """
    )
    return shown


async def example_two(platform: IsolatedPlatform) -> Endpoints:
    urls = endpoints(platform)
    await play_example_two(platform, urls, CLIENT)
    await play_example_two(platform, urls, OTHER_CLIENT)
    await platform.settled()
    return urls


async def test_example_2_as_the_spec_draws_it_and_a_workout_shows_without_a_reload(
    platform: IsolatedPlatform, browser: WebDriver
) -> None:
    urls = await example_two(platform)
    open_dashboard(browser, platform, Role.CLIENT, CLIENT)
    wait_for(browser, lambda: "solo" in bars(browser))

    shown = bars(browser)
    assert shown["solo"] == {"count": "30", "percentage": "66.7", "colour": SOLO_GREEN}
    assert shown["trainerLed"] == {"count": "15", "percentage": "33.3", "colour": TRAINER_ORANGE}
    assert credits_shown(browser) == {"used": "15", "remaining": "5", "total": "20"}
    # Colours have text labels, and the figures are a table too.
    labels = browser.find_element(By.ID, "distribution").text
    assert "Solo Workouts" in labels
    assert "Trainer Sessions" in labels
    table = browser.find_element(By.ID, "figures").text
    assert "Solo Workouts 30 66.7%" in table

    solo = browser.find_element(By.CSS_SELECTOR, '#distribution g[data-kind="solo"]')
    ActionChains(browser).move_to_element(solo).perform()
    tooltip = browser.find_element(By.ID, "tooltip")
    wait_for(browser, tooltip.is_displayed, within=5)
    assert tooltip.text == "30 workouts (66.7%)"
    ActionChains(browser).move_to_element(browser.find_element(By.TAG_NAME, "h1")).perform()
    SCREENSHOT.parent.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))

    # Live: the page follows the usage stream, without a reload.
    wait_for(
        browser, lambda: browser.find_element(By.ID, "live").get_attribute("data-state") == "on"
    )
    async with platform.http(Role.CLIENT, CLIENT) as http:
        response = await http.post(
            f"{urls.workouts}/api/workout/sessions", json={"userId": CLIENT, "title": "Run"}
        )
        assert response.status_code == 201, response.text
    logged = time.monotonic()
    wait_for(browser, lambda: bars(browser)["solo"]["count"] == "31")
    delay = time.monotonic() - logged
    assert bars(browser)["solo"]["percentage"] == "67.4"
    print(f"live update shown {delay * 1000:.0f} ms after the POST was answered")


async def test_a_client_sees_only_their_own_and_staff_switch_clients(
    platform: IsolatedPlatform, browser: WebDriver
) -> None:
    await example_two(platform)
    open_dashboard(browser, platform, Role.CLIENT, OTHER_CLIENT)
    wait_for(browser, lambda: "solo" in bars(browser))
    assert browser.find_element(By.ID, "subject").text.endswith(str(OTHER_CLIENT))
    assert not browser.find_element(By.ID, "client-id").is_displayed()
    # The page's own data requests for another client are refused.
    answer = browser.execute_async_script(
        """
        const [path, done] = arguments;
        fetch(path, {
          headers: {Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY)},
        }).then((r) => done(r.status), (e) => done(String(e)));
        """.replace("TOKEN_KEY", '"analytics.dashboard.token"'),
        f"/api/analytics/{CLIENT}/session-usage",
    )
    assert answer == 403

    # Without a token, no data at all.
    browser.execute_script("sessionStorage.clear()")
    browser.get(f"{platform.url('analytics')}/dashboard")
    wait_for(browser, lambda: "no token" in browser.find_element(By.ID, "status").text)
    assert not browser.find_element(By.ID, "report").is_displayed()

    open_dashboard(browser, platform, Role.STAFF, 1)
    client_field = browser.find_element(By.ID, "client-id")
    wait_for(browser, client_field.is_displayed)
    client_field.send_keys(str(CLIENT))
    browser.find_element(By.ID, "show").click()
    wait_for(browser, lambda: browser.find_element(By.ID, "subject").text.endswith(str(CLIENT)))
    wait_for(browser, lambda: bars(browser).get("solo", {}).get("count") == "30")

    # A link may name the client the page opens on (`ops dashboard-url --client`).
    open_dashboard(browser, platform, Role.STAFF, 1, client=OTHER_CLIENT)
    wait_for(
        browser, lambda: browser.find_element(By.ID, "subject").text.endswith(str(OTHER_CLIENT))
    )


async def test_a_trainer_on_a_phone_reads_the_clients_they_train_by_keyboard(
    platform: IsolatedPlatform, browser: WebDriver
) -> None:
    await example_two(platform)
    browser.set_window_size(390, 844)
    open_dashboard(browser, platform, Role.TRAINER, 456, client=CLIENT)
    wait_for(browser, lambda: bars(browser).get("solo", {}).get("count") == "30")
    # Phone width: nothing wider than the screen.
    wider = browser.execute_script(
        """
        const wider = [];
        for (const element of document.querySelectorAll("body *")) {
          if (element.getBoundingClientRect().right > window.innerWidth + 0.5) {
            wider.push(element.tagName.toLowerCase() + "#" + element.id);
          }
        }
        return wider;
        """
    )
    assert wider == []
    # The bars are reachable by keyboard, and focus shows the tooltip.
    for _ in range(20):
        focused = browser.switch_to.active_element
        if focused.get_attribute("data-kind") == "solo":
            break
        focused.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("data-kind") == "solo"
    tooltip = browser.find_element(By.ID, "tooltip")
    wait_for(browser, tooltip.is_displayed, within=5)
    assert tooltip.text == "30 workouts (66.7%)"

    # A client the trainer does not train: refused, and no data shown.
    client_field = browser.find_element(By.ID, "client-id")
    client_field.clear()
    client_field.send_keys("999")
    browser.find_element(By.ID, "show").click()
    status = browser.find_element(By.ID, "status")
    wait_for(browser, lambda: status.text.startswith("Not allowed"))
    assert not browser.find_element(By.ID, "report").is_displayed()
