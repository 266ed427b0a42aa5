"""Bad inputs to ``pipeline("facial-expression-recognition")`` and to the TRN/PIN models end in clear messages that
name the input (issue 14, item 9)."""

import copy
import functools
import http.server
import re
import socket
import threading
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import torch
from transformers import pipeline
from transformers.testing_utils import CaptureLogger

from poi_hf import PINForImageClassification, TRNForImageClassification
from poi_hf.faces import InvalidImageError, NoFaceError, load_rgb_image
from poi_hf.pin import modeling_pin
from poi_hf.presets import tiny_pin_config, tiny_trn_config
from poi_hf.trn import modeling_trn
from test_faces import sample_photos_or_skip
from test_fer_pipeline import save_tiny_checkpoints


@pytest.fixture(scope="module")
def photos() -> dict:
    return sample_photos_or_skip()


@pytest.fixture(scope="module")
def fer(tmp_path_factory):
    torch.manual_seed(0)
    return pipeline("facial-expression-recognition", model=str(save_tiny_checkpoints(tmp_path_factory.mktemp("run"))))


@pytest.fixture
def online(monkeypatch):
    """Offline mode off (conftest sets HF_HUB_OFFLINE=1), so that URLs are really requested; localhost not proxied."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")


@pytest.fixture
def photo_server(photos):
    """An HTTP server on localhost serving the sample photos' folder; yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=Path(photos["single_face.jpg"]).parent)
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()


def closed_port() -> int:
    """A localhost port nothing listens on: connecting is refused at once, like a machine without network."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_empty_list_of_images_is_refused(fer):
    with pytest.raises(ValueError, match=r"The list of images is empty; pass at least one image"):
        fer([])


def test_failing_image_of_a_list_is_named_by_index_and_path(fer, photos, tmp_path):
    face, landscape = str(photos["single_face.jpg"]), str(photos["free-mountain-vector-01.jpg"])
    missing = tmp_path / "missing.jpg"
    with pytest.raises(FileNotFoundError, match=re.escape(f"Image 1 of 3 ('{missing}'): No image file at '{missing}'")):
        fer([face, str(missing), face])
    with pytest.raises(NoFaceError, match=re.escape(f"Image 2 of 3 ('{landscape}'): No face found")):
        fer([face, face, landscape])
    with pytest.raises(InvalidImageError, match=re.escape("Image 0 of 1 (a uint8 array of shape (0, 0, 3)): ")):
        fer([np.zeros((0, 0, 3), np.uint8)])
    results = fer([face, landscape], allow_no_face=True, batch_size=2)
    assert [len(faces) for faces in results] == [1, 0]


def test_url_in_offline_mode_says_it_needs_a_network(fer, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    url = "http://127.0.0.1:9/face.jpg"
    with pytest.raises(ConnectionError, match=re.escape(f"Cannot download the image '{url}': offline mode is on "
                                                        "(HF_HUB_OFFLINE=1) and image URLs need a network connection")):
        fer(url)


def test_unreachable_url_says_it_needs_a_network(fer, online):
    url = f"http://127.0.0.1:{closed_port()}/face.jpg"
    with pytest.raises(ConnectionError, match=rf"Cannot download the image '{re.escape(url)}' \(.*refused.*\): "
                                              "image URLs need a network connection"):
        fer(url)
    with pytest.raises(ConnectionError, match=rf"Image 0 of 1 \('{re.escape(url)}'\): Cannot download"):
        fer([url])


def test_url_is_downloaded_like_the_file(fer, photos, online, photo_server):
    path = photos["single_face.jpg"]
    assert fer(f"{photo_server}/{Path(path).name}") == fer(str(path))
    missing = f"{photo_server}/missing.jpg"
    with pytest.raises(FileNotFoundError, match=re.escape(f"No image at '{missing}': the server answered 404")):
        fer(missing)


def test_directory_or_missing_path_is_named(fer, tmp_path):
    with pytest.raises(IsADirectoryError, match=re.escape(f"'{tmp_path}' is a directory, not an image file")):
        fer(str(tmp_path))
    with pytest.raises(FileNotFoundError, match=re.escape(f"No image file at '{tmp_path / 'missing.jpg'}'.")):
        fer(tmp_path / "missing.jpg")


def test_float_array_in_0_1_is_the_uint8_image(fer, photos):
    pixels = np.asarray(load_rgb_image(photos["single_face.jpg"]))
    expected = fer(pixels)
    for dtype in (np.float16, np.float32, np.float64):
        assert fer(pixels.astype(dtype) / 255) == expected, dtype  # not rescaled a second time
    every_level = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(*(np.asarray(load_rgb_image(image)) for image in (every_level / 255, every_level)))


def test_float_array_outside_0_1_is_refused(fer):
    with pytest.raises(InvalidImageError, match=re.escape("Float image arrays must hold values in [0, 1]; got 0..255")):
        fer(np.linspace(0, 255, 32 * 32 * 3).reshape(32, 32, 3))
    with pytest.raises(InvalidImageError, match=r"in \[0, 1\]; got nan"):
        fer(np.full((32, 32, 3), np.nan, np.float32))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_empty_array_is_refused(fer, dtype):
    with pytest.raises(InvalidImageError, match=re.escape("The image array is empty (shape (0, 0, 3)); it has no")):
        fer(np.zeros((0, 0, 3), dtype))


@pytest.mark.parametrize("model_class, config_fn", [(TRNForImageClassification, tiny_trn_config),
                                                    (PINForImageClassification, tiny_pin_config)])
def test_model_casts_float_pixel_values_and_refuses_raw_pixels(model_class, config_fn):
    model = model_class(config_fn()).eval()
    size = model.config.image_size
    pixels = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected = model(pixels).logits
        torch.testing.assert_close(model(pixels.double()).logits, expected)
        half = copy.deepcopy(model).to(torch.bfloat16)  # float32 pixel_values are cast to the model's dtype
        torch.testing.assert_close(half(pixels).logits.float(), expected, atol=0.1, rtol=0.1)
    for dtype in (torch.uint8, torch.int64):
        with pytest.raises(ValueError, match=rf"pixel_values must be a floating-point tensor .*got {dtype}\. Raw "
                                             "0..255 images should go through the model's image processor"):
            model(torch.zeros(2, 3, size, size, dtype=dtype))
    with pytest.raises(ValueError, match=rf"pixel_values are empty \(0x0 pixels\); expected {size}x{size}"):
        model(torch.zeros(2, 3, 0, 0))


@pytest.mark.parametrize("module, model_class, config_fn", [
    (modeling_trn, TRNForImageClassification, tiny_trn_config),
    (modeling_pin, PINForImageClassification, tiny_pin_config),
])
def test_model_warns_about_pixel_values_of_another_size(module, model_class, config_fn):
    model = model_class(config_fn()).eval()
    size = model.config.image_size
    with CaptureLogger(module.logger) as captured, torch.no_grad():
        model(torch.randn(1, 3, size, size))
    assert captured.out == ""
    with CaptureLogger(module.logger) as captured, torch.no_grad():
        model(torch.randn(1, 3, size + 5, size - 3))  # a size no other test uses: warning_once has not fired yet
    assert (f"pixel_values are {size + 5}x{size - 3} but this model was trained on {size}x{size} images "
            "(config.image_size)") in captured.out
