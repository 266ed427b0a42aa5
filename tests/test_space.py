"""The Gradio Space: its predict function, the app served on 127.0.0.1 (gradio_client), and headless Chromium."""

import http.server
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image
from transformers import ResNetConfig, ResNetForImageClassification

from poi_hf import POIImageProcessor
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
    faces = app.get_pipeline()(str(photos["multi_face.jpg"]))
    assert [row[4] for row in rows] == [round(face["pin_support"], 3) for face in faces]
    assert all(row[5] for row in rows)  # PIN's top regions


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


def test_faces_are_numbered_from_one_in_the_table_and_the_chart(app, photos):
    _, figure, rows, _ = app.predict(str(photos["multi_face.jpg"]))
    assert [row[0] for row in rows] == [1, 2, 3, 4, 5]  # as the annotated image's "#1" ... "#5"
    assert [axes.get_title().split()[0] for axes in figure.axes[::2]] == ["#1", "#2", "#3", "#4", "#5"]


def test_region_chart_names_pins_own_label(app, photos):
    """The region chart's title says what PIN predicts, even where the TRN's label (which the regions' shares are
    about) differs."""
    face = {"label": "happiness", "score": 0.6, "confidence": 0.7,
            "distribution": {name: 0.6 if name == "happiness" else 0.4 / 6 for name in RAFDB_ORDER},
            "pin_distribution": {name: 0.4 if name == "anger" else 0.1 for name in RAFDB_ORDER},
            "regions": [{"name": "mouth_left", "contribution": 0.7}, {"name": "global", "contribution": 0.3}]}
    assert app.distribution_figure([face]).axes[1].get_title() == "PIN says 'anger'\nregions behind its p('happiness')"
    faces = app.get_pipeline()(str(photos["multi_face.jpg"]))
    for face, axes in zip(faces, app.distribution_figure(faces).axes[1::2]):
        pin_label = max(face["pin_distribution"], key=face["pin_distribution"].get)
        assert axes.get_title().startswith(f"PIN says '{pin_label}'")


def test_classifier_without_confidence_is_shown(app, photos, monkeypatch, tmp_path):
    """A plain transformers ResNet has no uncertainty head: the chart and table leave the confidence out instead of
    failing."""
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
                          id2label=dict(enumerate(RAFDB_ORDER)))
    ResNetForImageClassification(config).save_pretrained(tmp_path)
    POIImageProcessor(size={"height": 48, "width": 48}).save_pretrained(tmp_path)
    monkeypatch.setenv("POI_HF_MODEL", str(tmp_path))
    app.get_pipeline.cache_clear()
    try:
        _, figure, rows, status = app.predict(str(photos["single_face.jpg"]))
    finally:
        app.get_pipeline.cache_clear()
    assert status == "Found 1 face." and rows[0][3] is None
    assert "confidence" not in figure.axes[0].get_title()


@pytest.mark.parametrize("variable, value, problem", [
    ("POI_HF_MODEL", "{tmp}/no_model_here", "No model folder at"),
    ("POI_HF_MODEL", "{tmp}", "has no config.json"),
    ("POI_HF_MODEL", "nobody/no-such-model", "not in the Hub cache, and the Hub could not be reached"),
    ("POI_HF_MODEL", "not a model id", "neither a local folder nor a Hub id of the form 'owner/name'"),
    ("POI_HF_PIN_MODEL", "{tmp}/no_pin_here", "No model folder at"),
])
def test_bad_model_settings_give_readable_messages(app, photos, monkeypatch, tmp_path, variable, value, problem):
    """Offline here (tests/conftest.py), so a Hub id that is not cached cannot be fetched."""
    value = value.format(tmp=tmp_path)
    monkeypatch.setenv(variable, value)
    app.get_pipeline.cache_clear()
    try:
        status = app.predict(str(photos["single_face.jpg"]))[3]
    finally:
        app.get_pipeline.cache_clear()
    assert status.startswith(f"**The model could not be loaded.** `{variable}` is `{value}`: ")
    assert problem in status and "huggingface.co" not in status and "Error" not in status


class FakeHub(http.server.BaseHTTPRequestHandler):
    """Answers like the Hub for three repos: ``nobody/missing`` (no such repo), ``nobody/gated`` (gated, no token)
    and ``nobody/empty`` (a repo without config.json)."""

    ERRORS = {"missing": (404, "RepoNotFound"), "gated": (403, "GatedRepo"), "empty": (404, "EntryNotFound")}

    def do_HEAD(self):
        parts = self.path.split("/")
        status, code = self.ERRORS.get(parts[2] if len(parts) > 2 else "", (404, "RepoNotFound"))
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, *args):
        pass


@pytest.mark.slow
def test_hub_errors_become_readable_messages(photos, tmp_path):
    """The Space in a process whose Hub is a local server that answers with the Hub's errors."""
    hub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    script = ("import json, os, sys\nimport app\nstatus = {}\nfor model in sys.argv[2:]:\n"
              "    os.environ['POI_HF_MODEL'] = model\n    app.get_pipeline.cache_clear()\n"
              "    status[model] = app.predict(sys.argv[1])[3]\nprint(json.dumps(status))\n")
    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{hub.server_address[1]}", "HF_HUB_OFFLINE": "0",
           "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
           "PYTHONPATH": os.pathsep.join([str(APP.parent), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    models = ["nobody/missing", "nobody/gated", "nobody/empty"]
    try:
        result = subprocess.run([sys.executable, "-c", script, str(photos["single_face.jpg"]), *models], env=env,
                                capture_output=True, text=True, timeout=300)
    finally:
        hub.shutdown()
    assert result.returncode == 0, result.stderr[-3000:]
    status = json.loads(result.stdout.splitlines()[-1])
    for model, problem in zip(models, ["no such model on the Hub, or a private one", "a gated Hub repository",
                                       "a Hub repository without config.json"]):
        assert status[model].startswith(f"**The model could not be loaded.** `POI_HF_MODEL` is `{model}`: {problem}")
        assert "127.0.0.1" not in status[model] and "Error" not in status[model]


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
