"""The web demo in a real browser: Debian's headless Chromium driven by Selenium (the system
browser and driver; nothing downloaded), against a server on a free local port."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from vidchat.media import probe, read_image

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "web_demo.png"

pytestmark = [pytest.mark.slow, pytest.mark.serial]


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM and DRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--mute-audio",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _wait(predicate, timeout: float = 120.0, step: float = 0.25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out waiting for the page")


def _upload(driver, path: Path) -> None:
    from selenium.webdriver.common.by import By

    for clear in driver.find_elements(By.CSS_SELECTOR, "#partner button[aria-label='Clear']"):
        clear.click()
    field = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#partner input[type=file]"))
    field[0].send_keys(str(path))
    _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#partner video"))
    driver.find_element(By.CSS_SELECTOR, "#go").click()


def _error_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, ".toast-body"))


def _status(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, "#status").text


def _answer_video(driver) -> dict:
    """The answer <video>: its src, and what the browser decoded of it."""
    script = """const v = document.querySelector('#answer video');
      if (!v || !v.src || v.readyState < 1) return null;
      return {src: v.src, duration: v.duration, error: v.error && v.error.code};"""
    return _wait(lambda: driver.execute_script(script), timeout=60)


def test_upload_answers_in_the_page_and_bad_files_get_a_message(
    browser, demo_server, partner_upload, tmp_path
):
    browser.get(demo_server.url)
    _upload(browser, partner_upload)
    status = _wait(lambda: (s := _status(browser)).startswith("done") and s, timeout=180)
    video = _answer_video(browser)
    assert video["error"] is None
    local = tmp_path / "answer.mp4"
    local.write_bytes(urllib.request.urlopen(video["src"]).read())
    info, partner = probe(local), probe(partner_upload)
    answer_s = float(status.split("done: ")[1].split(" s")[0])
    assert info.sample_rate == 16000  # the voice is in the file
    assert info.duration == pytest.approx(partner.duration + answer_s, abs=0.2)
    assert video["duration"] == pytest.approx(info.duration, abs=0.1)  # the browser read it
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(tmp_path / "page.png"))

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video" * 100)
    _upload(browser, broken)
    # the server's message; the browser may first show its own "Video not playable"
    _wait(lambda: "not a video file" in _error_text(browser), timeout=60)
    _upload(browser, partner_upload)  # the server still serves
    _wait(lambda: _status(browser).startswith("done") and _status(browser) != status, 180)

    shot = read_image(tmp_path / "page.png")
    assert shot.std() > 10  # a rendered page, not a blank one
    if os.environ.get("VIDCHAT_UPDATE_SCREENSHOT"):  # refresh the README's screenshot
        shutil.copy(tmp_path / "page.png", SCREENSHOT)
    assert read_image(SCREENSHOT).shape == shot.shape  # the docs show this page
    requests = [json.loads(e["message"])["message"] for e in browser.get_log("performance")]
    urls = {
        m["params"]["request"]["url"]
        for m in requests
        if m["method"] == "Network.requestWillBeSent"
    }
    assert urls and all(u.startswith(("http://127.0.0.1", "data:", "blob:")) for u in urls), urls


def test_two_requests_at_once_both_complete(demo_server, partner_upload):
    from gradio_client import Client, handle_file

    client = Client(demo_server.url, verbose=False)
    results: list = [None, None]

    def ask(i: int) -> None:
        results[i] = client.predict(
            handle_file(str(partner_upload)),
            None,
            "checkpoint default",
            None,
            1.0,
            0,
            1.0,
            i,
            1.0,
            api_name="/answer",
        )

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    for _, status, answer in results:
        assert status.startswith("done") and Path(answer).is_file()
    assert np.isfinite([probe(r[2]).duration for r in results]).all()


def test_a_demo_partner_turn_and_a_demo_face_can_be_picked(demo_server, demo_world):
    from gradio_client import Client

    from vidchat.webapp.session import demo_choices

    clips, faces, _ = demo_choices(demo_world.root)
    client = Client(demo_server.url, verbose=False)
    _, status, answer = client.predict(
        None, clips[0][0], faces[1], None, 1.0, 0, 1.0, 0, 1.0, api_name="/answer"
    )
    assert status.startswith("done") and probe(answer).sample_rate == 16000
    with pytest.raises(Exception, match="upload a reference face image first"):
        client.predict(
            None, clips[0][0], "uploaded image", None, 1.0, 0, 1.0, 0, 1.0, api_name="/answer"
        )
