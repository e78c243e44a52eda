"""The dashboard in a real browser: ``perpsim viz`` served on a free port, driven in Chromium.

As a delegate would use it: load the page, set a maintenance margin and a step size, Reset,
press Step a few times and watch the charts and the events table change; enter a bad value and
read the scenario layer's message (the one ``perpsim run --set`` prints); open a finished run
folder and move its time slider. Each test saves a screenshot in its temporary folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import browser_page, viz_server
from support import run_perpsim

pytestmark = pytest.mark.slow

MM_LABEL = "maintenance_margin_rate"


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("viz") / "server.log"
    with viz_server(["black_thursday"], log) as url:
        yield url


def _select(page: Any, label: str, option: str) -> None:
    page.locator(".v-select").filter(has_text=label).locator(".v-select__slot").click()
    page.get_by_role("option", name=option, exact=True).click()


def _fill(page: Any, label: str, text: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(text)
    box.press("Enter")


def _clock(page: Any) -> str:
    text: str = page.locator(".perpsim-clock").inner_text()
    return text


def _charts(page: Any) -> list[str]:
    paths: list[str] = page.locator("path.perpsim-series").evaluate_all(
        "els => els.map(e => e.getAttribute('d'))"
    )
    return paths


def _press_step(page: Any) -> None:
    before = _clock(page)
    page.get_by_role("button", name="Step", exact=True).click()
    page.wait_for_function(
        "before => document.querySelector('.perpsim-clock').innerText !== before", arg=before
    )


def test_set_a_margin_step_and_read_a_bad_value(live_url: str, tmp_path: Path) -> None:
    with browser_page(height=2400) as page:
        page.goto(live_url)
        page.locator(".perpsim-clock").wait_for()
        assert "tick 0 of 4,320" in _clock(page)
        assert "No liquidations" in page.locator(".perpsim-events-cell").inner_text()
        charts_before = _charts(page)

        _select(page, "step size", "6 hours")
        _fill(page, MM_LABEL, "0.095")
        page.get_by_role("button", name="Reset", exact=True).click()
        page.locator(".perpsim-overrides").filter(
            has_text="venue.governance.maintenance_margin_rate=0.095"
        ).wait_for()
        for _ in range(4):
            _press_step(page)
        assert "tick 1,440 of 4,320" in _clock(page)  # 4 steps of 6 hours at 1-minute ticks
        charts_after = _charts(page)
        assert len(charts_after) == len(charts_before)
        assert sum(a != b for a, b in zip(charts_before, charts_after, strict=True)) >= 5
        rows = page.locator(".perpsim-events tbody tr")
        assert rows.count() > 0
        assert "liquidation" in page.locator(".perpsim-events").inner_text()
        page.screenshot(path=str(tmp_path / "dashboard-stepped.png"), full_page=True)

        _fill(page, MM_LABEL, "0.2")
        page.get_by_role("button", name="Reset", exact=True).click()
        error = page.locator(".perpsim-error")
        error.wait_for()
        cli = run_perpsim(
            "run",
            "black_thursday",
            "--set",
            "venue.governance.maintenance_margin_rate=0.2",
            "--no-plots",
            "--quiet",
            "--out",
            str(tmp_path / "never"),
        )
        assert cli.returncode == 2
        assert error.inner_text().strip() == cli.stderr.strip().removeprefix("error: ")
        assert "margin rates must satisfy" in error.inner_text()
        assert "Traceback" not in page.locator("body").inner_text()
        page.screenshot(path=str(tmp_path / "dashboard-bad-value.png"), full_page=True)


def test_a_finished_run_folder_has_a_time_slider(recorded_run_dir: Path, tmp_path: Path) -> None:
    run_dir = recorded_run_dir
    with viz_server([str(run_dir)], tmp_path / "server.log") as url, browser_page() as page:
        page.goto(url)
        page.locator(".perpsim-clock").wait_for()
        end = _clock(page)
        assert "(100%)" in end
        slider = page.locator(".v-slider")
        slider.click(position={"x": 2, "y": 8})
        page.wait_for_function(
            "end => document.querySelector('.perpsim-clock').innerText !== end", arg=end
        )
        assert "(0%)" in _clock(page) or "(1%)" in _clock(page)
        page.screenshot(path=str(tmp_path / "dashboard-recorded.png"), full_page=True)


def test_play_redraws_once_per_step_and_pauses(live_url: str, tmp_path: Path) -> None:
    with browser_page() as page:
        page.goto(live_url)  # a new tab is a new run
        page.locator(".perpsim-clock").wait_for()
        _select(page, "step size", "6 hours")
        page.get_by_role("button", name="Reset", exact=True).click()
        seen: list[str] = []
        page.expose_function("perpsimFrame", lambda text: seen.append(str(text)))
        page.evaluate(
            """() => new MutationObserver(() => {
                 const c = document.querySelector('.perpsim-clock');
                 if (c) window.perpsimFrame(c.innerText);
               }).observe(document.body, {subtree: true, childList: true, characterData: true})"""
        )
        page.get_by_role("button", name="▶", exact=True).click()
        page.wait_for_function(
            "() => /tick (1,080|1,440|1,800|2,160)/.test("
            "document.querySelector('.perpsim-clock').innerText)"
        )
        page.get_by_role("button", name="❚❚", exact=True).click()
        page.get_by_role("button", name="▶", exact=True).wait_for()
        # The step under way when ❚❚ was pressed still ends (one more frame), then nothing.
        page.wait_for_timeout(3000)
        paused = _clock(page)
        page.wait_for_timeout(3000)
        assert _clock(page) == paused
        assert "(100%)" not in paused
        ticks = {int(t.split("tick ")[1].split(" of")[0].replace(",", "")) for t in seen}
        assert ticks and all(t % 360 == 0 for t in ticks)  # one frame per 6-hour step
        page.screenshot(path=str(tmp_path / "dashboard-paused.png"), full_page=True)
