"""The demo app (app.py) in a real browser: headless Debian chromium driven by Selenium.

The app runs as users start it (`python app.py --model DIR`, a subprocess serving 127.0.0.1 on a
free port) with a micro model saved to a temporary folder. The test uploads a stereo 22.05 kHz
WAV, types labels, clicks Classify and reads the scores the page shows; they must equal
`pipeline("zero-shot-audio-classification")` on the same file to the 4 decimals shown. On the
Search tab, a description ranks the app's library (`--library`, three built-in clips) as a
`SearchIndex` of the same folder does, and the best hit gets a player. Screenshots are kept in
`outputs/test-artifacts/app_classify.png` and `app_search.png` (their paths are printed).

Skipped, with the reason, only where chromium, chromedriver or selenium is not installed
(`./run` installs all three: Debian's `chromium` and `chromium-driver`, the dev extra's selenium).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile
from transformers import pipeline

from slap_audio.data.builtin_data import write_audiofolder
from slap_audio.eval.zero_shot import pipeline_input
from slap_audio.search import SearchIndex

from conftest import tone

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "outputs" / "test-artifacts"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
LABELS = ["low hum", "siren", "rain", "three clicks"]

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra has it)")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian's chromium and chromium-driver are not installed (./run installs them as root with apt-get)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def wav(tmp_path_factory) -> Path:
    """2.5 s of stereo at 22.05 kHz: the app must downmix and resample like the pipeline's users."""
    path = tmp_path_factory.mktemp("audio") / "two tones.wav"
    soundfile.write(path, np.stack([tone(2.5, 300.0, 22050), tone(2.5, 520.0, 22050, seed=1)], axis=1), 22050)
    return path


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    return write_audiofolder(tmp_path_factory.mktemp("library"), {"test": 3})["test"]


@pytest.fixture(scope="module")
def app_url(micro_checkpoint, library, tmp_path_factory):
    """`python app.py --model DIR` serving on 127.0.0.1:<free port>; its URL once it answers."""
    port = _free_port()
    log = tmp_path_factory.mktemp("app") / "app.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", GRADIO_ANALYTICS_ENABLED="False")
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--model", str(micro_checkpoint), "--host", "127.0.0.1",
             "--port", str(port), "--library", str(library)],
            cwd=tmp_path_factory.mktemp("cwd"), env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"app.py exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"app.py did not answer in 120 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _screenshot(browser, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    browser.save_screenshot(str(path))
    print(f"screenshot of the app under test: {path}")
    assert path.stat().st_size > 10_000
    return path


def test_classify_tab_shows_the_pipeline_scores(app_url, browser, micro_checkpoint, wav):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(app_url)
    upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#classify-audio input[type=file]"))
    upload.send_keys(str(wav))
    # uploaded: the component offers the stored copy for download
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#classify-audio a[download]"))
    labels = browser.find_element(By.CSS_SELECTOR, "#labels textarea")
    labels.clear()
    labels.send_keys(", ".join(LABELS))
    browser.find_element(By.CSS_SELECTOR, "#classify").click()
    rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#scores table tbody tr"))
    shown = {}
    for row in rows:
        label, score = (cell.text for cell in row.find_elements(By.CSS_SELECTOR, "td"))
        shown[label] = float(score)
    _screenshot(browser, "app_classify.png")

    audio, rate = soundfile.read(wav, dtype="float32")
    classifier = pipeline("zero-shot-audio-classification", model=str(micro_checkpoint))
    reference = classifier(pipeline_input(audio, rate, classifier.feature_extractor.sampling_rate),
                           candidate_labels=LABELS)
    assert list(shown) == [r["label"] for r in reference]  # best first, as the pipeline ranks
    assert shown == {r["label"]: round(r["score"], 4) for r in reference}


def test_search_tab_ranks_the_library_and_plays_the_best_hit(app_url, browser, micro_checkpoint, library, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 90)  # the first query indexes the library
    browser.get(app_url)
    tab = wait.until(lambda d: next((b for b in d.find_elements(By.CSS_SELECTOR, "button[role=tab]")
                                     if b.text.strip() == "Search"), None))  # fmt: skip
    tab.click()
    query = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#query textarea"))
    query.clear()
    query.send_keys("a siren wailing up and down")
    browser.find_element(By.CSS_SELECTOR, "#search").click()
    rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#hits table tbody tr"))
    shown = [[cell.text for cell in row.find_elements(By.CSS_SELECTOR, "td")][1:3] for row in rows]
    best = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "a[download][href*='slap-test-']"))
    _screenshot(browser, "app_search.png")

    index = SearchIndex.build(library, str(micro_checkpoint), tmp_path / "index")
    reference = index.query_text("a siren wailing up and down", k=10)
    assert shown == [[f"{hit.score:.4f}", Path(hit.path).name] for hit in reference]
    assert Path(reference[0].path).name in best[0].get_attribute("href")  # the best hit is playable
