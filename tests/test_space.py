"""The Gradio Space: its predict function, the app served on 127.0.0.1 (gradio_client), and headless Chromium."""

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from test_faces import sample_photos_or_skip
from test_fer_pipeline import RAFDB_ORDER, save_tiny_checkpoints

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "spaces" / "app.py"


@pytest.fixture(scope="module")
def photos() -> dict:
    return sample_photos_or_skip()


@pytest.fixture(scope="module")
def fer_checkpoint(tmp_path_factory) -> Path:
    return save_tiny_checkpoints(tmp_path_factory.mktemp("fer_run"))


@pytest.fixture(scope="module")
def app(fer_checkpoint):
    """spaces/app.py imported as a module, its model pointed at the tiny checkpoint."""
    os.environ["POI_HF_MODEL"] = str(fer_checkpoint)
    spec = importlib.util.spec_from_file_location("space_app", APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    del os.environ["POI_HF_MODEL"]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, photos) -> dict[str, Path]:
    """A text file named .jpg, an empty file, a 10000x10000 photo, a grayscale photo."""
    directory = tmp_path_factory.mktemp("bad_inputs")
    files = {"text": directory / "notes.jpg", "empty": directory / "empty.png",
             "huge": directory / "huge.jpg", "gray": directory / "gray.png"}
    files["text"].write_text("definitely not a JPEG")
    files["empty"].touch()
    face = Image.open(photos["single_face.jpg"]).convert("RGB")
    face.resize((10_000, 10_000)).save(files["huge"], quality=70)
    face.convert("L").save(files["gray"])
    return files


def test_predict_reports_every_face(app, photos):
    annotated, figure, rows, status = app.predict(str(photos["multi_face.jpg"]))
    assert status.startswith("Found 5 faces")
    assert len(rows) == 5 and len(rows[0]) == len(app.TABLE_HEADERS)
    assert annotated.size == Image.open(photos["multi_face.jpg"]).size
    assert len(figure.axes) == 5 * 2  # distribution + regions per face
    assert all(row[4] for row in rows)  # PIN's top regions


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_predict_explains_bad_inputs(app, photos, bad_files):
    assert "Cannot read this file as an image" in app.predict(str(bad_files["text"]))[3]
    assert "empty file" in app.predict(str(bad_files["empty"]))[3]
    assert "No face found" in app.predict(str(photos["free-mountain-vector-01.jpg"]))[3]
    assert "Upload a photo" in app.predict(None)[3]
    annotated, _, rows, status = app.predict(str(bad_files["huge"]))
    assert "10000×10000" in status and len(rows) == 1 and max(annotated.size) <= app.DISPLAY_SIDE
    assert app.predict(str(bad_files["gray"]))[3].startswith("Found 1 face")
    assert app.predict(str(photos["Image_with_alpha.png"]))[3].startswith("Found 1 face")


def test_missing_model_gives_a_message(app, photos, monkeypatch, tmp_path):
    monkeypatch.setenv("POI_HF_MODEL", str(tmp_path / "no_model_here"))
    app.get_pipeline.cache_clear()
    try:
        assert "could not be loaded" in app.predict(str(photos["single_face.jpg"]))[3]
    finally:
        app.get_pipeline.cache_clear()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(fer_checkpoint, tmp_path_factory):
    """`python spaces/app.py` in a subprocess on 127.0.0.1; yields its URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {**os.environ, "POI_HF_MODEL": str(fer_checkpoint), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "GRADIO_SSR_MODE": "False", "GRADIO_ANALYTICS_ENABLED": "False",
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, str(APP)], env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"The Space did not come up on {url}:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.slow
def test_served_app_answers_gradio_client_and_survives_bad_inputs(server, photos, bad_files):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    annotated, chart, table, status = client.predict(handle_file(str(photos["multi_face.jpg"])), api_name="/predict")
    assert status.startswith("Found 5 faces") and Path(annotated).is_file()
    assert len(table["data"]) == 5
    for path, message in ((bad_files["text"], "Cannot read"), (bad_files["empty"], "Cannot read"),
                          (photos["free-mountain-vector-01.jpg"], "No face found"),
                          (bad_files["huge"], "10000×10000")):
        assert message in client.predict(handle_file(str(path)), api_name="/predict")[3]
    # Concurrent users queue up instead of crashing the server.
    jobs = [client.submit(handle_file(str(photos[name])), api_name="/predict")
            for name in ("single_face.jpg", "0-f1-su-ph.jpg", "45-m7-di-ph.jpg")]
    assert [job.result(timeout=120)[3] for job in jobs] == ["Found 1 face."] * 3


@pytest.mark.slow
def test_browser_upload_shows_the_result(server, photos, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.skip("Debian chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,2000", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download a driver
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver))
    try:
        driver.get(server)
        upload = WebDriverWait(driver, 60).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "#photo input[type=file]"))
        upload.send_keys(str(photos["multi_face.jpg"]))
        WebDriverWait(driver, 120).until(lambda d: "Found 5 faces" in d.find_element(By.ID, "status").text)
        table = driver.find_element(By.ID, "faces-table").text
        assert sum(line in RAFDB_ORDER for line in table.splitlines()) == 5  # one emotion cell per face
        assert driver.find_elements(By.CSS_SELECTOR, "#annotated img")
        screenshot = tmp_path / "space_after_upload.png"
        driver.save_screenshot(str(screenshot))
        assert Image.open(screenshot).size[0] > 0
        print(f"screenshot: {screenshot}")
    finally:
        driver.quit()
