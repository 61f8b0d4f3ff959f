"""The comparison page end to end in headless Chromium (Selenium + Debian's chromium-driver).

Starts `versacodec serve` on a free loopback port with a tiny generative bundle, uploads an
image through the file input, runs a comparison, checks the bpp the page shows against the real
size of the .vcx it offers for download, and saves a screenshot. Set VERSACODEC_SCREENSHOT to
a path to keep the screenshot, and VERSACODEC_E2E_MODEL to a model bundle to run the page on
it instead of the tiny random one (docs/images/serve.png is made this way with the shipped model).
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest
from PIL import Image

from versacodec.paths import PACKAGE_DIR

webdriver = pytest.importorskip("selenium.webdriver",
                                reason="selenium is not installed (pip install 'versacodec[dev]')")
pytest.importorskip("flask", reason="the serve extra is not installed (pip install 'versacodec[serve]')")

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# Flags for a sandboxed CI machine without network: no GPU, no sandbox (root), nothing phoning home.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1360,1000")
SAMPLE = PACKAGE_DIR / "samples" / "portrait.png"
START_TIMEOUT = 60.0
JOB_TIMEOUT = 90.0

pytestmark = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                                reason="no headless browser: apt-get install chromium chromium-driver")


@pytest.fixture
def server_url(generative_bundle):
    model = os.environ.get("VERSACODEC_E2E_MODEL") or str(generative_bundle)
    process = subprocess.Popen([sys.executable, "-m", "versacodec", "serve", "--port", "0", "--model",
                                model, "--max-upload-mb", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield _wait_for_address(process)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for_address(process: subprocess.Popen) -> str:
    """The server prints its address once it listens (port 0: the system picked one)."""
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if selector.select(timeout=0.5):
            line = process.stdout.readline()
            if match := re.search(r"http://127\.0\.0\.1:\d+/", line):
                return match.group(0)
            if not line:  # the server exited
                break
    raise AssertionError(f"versacodec serve did not start: {process.stderr.read() if process.poll() else ''}")


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_upload_compress_and_check_the_shown_bpp_against_the_real_file(server_url, browser, tmp_path):
    wait = WebDriverWait(browser, JOB_TIMEOUT)
    browser.get(server_url)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#samples button"))

    # A file that is not an image gets a clear message, and the page stays usable.
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a picture")
    browser.find_element(By.ID, "file").send_keys(str(text_file))
    wait.until(lambda d: d.find_element(By.ID, "upload-error").is_displayed())
    assert browser.find_element(By.ID, "upload-error").text == (
        "Cannot use notes.txt: the upload is not an image file Pillow can read")

    browser.find_element(By.ID, "file").send_keys(str(SAMPLE))
    wait.until(lambda d: d.find_element(By.ID, "run").is_enabled())
    assert not browser.find_element(By.ID, "upload-error").is_displayed()
    assert browser.find_element(By.ID, "dec-generative").is_selected()  # the bundle has a generative decoder
    bpp_input = browser.find_element(By.ID, "bpp")
    bpp_input.clear()
    bpp_input.send_keys("0.15")
    browser.find_element(By.ID, "run").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results tbody tr[data-key='jpeg']")
               or d.find_element(By.ID, "job-error").is_displayed())
    assert not browser.find_element(By.ID, "job-error").is_displayed(), browser.find_element(By.ID, "job-error").text

    width, height = Image.open(SAMPLE).size
    for key in ("versacodec-direct", "versacodec-generative"):
        row = browser.find_element(By.CSS_SELECTOR, f"#results tbody tr[data-key='{key}']")
        shown_bpp = float(row.find_element(By.CSS_SELECTOR, "td.bpp").text)
        link = row.find_element(By.CSS_SELECTOR, "td.download a")
        assert link.get_attribute("download") == "portrait.vcx"
        with urllib.request.urlopen(link.get_attribute("href"), timeout=10) as response:
            vcx = response.read()
        assert vcx.startswith(b"\x89VCX")
        assert int(row.find_element(By.CSS_SELECTOR, "td.bytes").text) == len(vcx)
        assert shown_bpp == pytest.approx(len(vcx) * 8 / (width * height), abs=5e-5)
        assert shown_bpp <= 0.15 + 5e-5
    for key in ("avif", "heif", "webp", "jpeg"):
        row = browser.find_element(By.CSS_SELECTOR, f"#results tbody tr[data-key='{key}']")
        assert float(row.find_element(By.CSS_SELECTOR, "td.bpp").text) <= shown_bpp + 5e-5
    for row in browser.find_elements(By.CSS_SELECTOR, "#results tbody tr:not([data-key='original'])"):
        for metric in ("psnr", "lpips", "dists"):  # every reconstruction shows all three
            assert float(row.find_element(By.CSS_SELECTOR, f"td.{metric}").text) > 0

    screenshot = tmp_path / "serve.png"
    assert browser.save_screenshot(str(screenshot))
    assert Image.open(screenshot).size[0] > 0
    if target := os.environ.get("VERSACODEC_SCREENSHOT"):
        shutil.copyfile(screenshot, target)

    # Dragging on the split view moves the divider.
    stage = browser.find_element(By.ID, "stage-area")
    ActionChains(browser).move_to_element_with_offset(stage, -stage.size["width"] // 4, 0).click_and_hold() \
        .move_by_offset(5, 0).release().perform()
    assert 20 < float(browser.find_element(By.ID, "handle").get_attribute("aria-valuenow")) < 35
