"""The repos examples/push_to_hub.py publishes load as the Hub serves them: both networks through `AutoModel` and
`AutoModelForImageClassification` with trust_remote_code=True in an interpreter that cannot import poi_hf, and the
FER pipeline finds a Hub TRN's PIN. The "Hub" is a local Hugging Face cache the fake `HfApi` commits into."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import huggingface_hub
import pytest
import torch
from PIL import Image
from transformers import pipeline

from poi_hf import PINForImageClassification, POIImageProcessor, TRNForImageClassification
from poi_hf.faces import HaarFaceDetector
from poi_hf.hub import PIN_MODEL_KEY, export_submodel, model_card
from poi_hf.presets import tiny_pin_config, tiny_trn_config
from test_push_to_hub import PIN_REPO_ID, REPO_ID, FakeHfApi, hub_snapshot, load_push_to_hub
from without_poi_hf import HIDE_POI_HF


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> tuple[FakeHfApi, dict[str, torch.nn.Module]]:
    """A tiny TRN and PIN exported as training does and published by examples/push_to_hub.py; the fake Hub and the
    original models by repo id."""
    run = tmp_path_factory.mktemp("run")
    models = {REPO_ID: TRNForImageClassification(tiny_trn_config()).eval(),
              PIN_REPO_ID: PINForImageClassification(tiny_pin_config()).eval()}
    for name, model in zip(("trn", "pin"), models.values()):
        card = model_card(model, repo_id="run", dataset_name="SynFER (clean labels)", metrics={"accuracy": 0.5})
        size = model.config.image_size
        export_submodel(model, run / name, POIImageProcessor(size={"height": size, "width": size}), card)
    api = FakeHfApi(tmp_path_factory.mktemp("hub_cache"))
    push_to_hub = load_push_to_hub()
    push_to_hub.HfApi = api  # a fresh module: nothing else sees the fake
    assert push_to_hub.main(["--trn_dir", str(run / "trn"), "--pin_dir", str(run / "pin"), "--repo_id", REPO_ID]) == 0
    return api, models


def test_both_repos_load_without_poi_hf_through_auto_model_and_image_classification(published, tmp_path):
    api, models = published
    pixels = torch.rand(2, 3, 48, 48)
    landmarks = torch.tensor(tiny_pin_config().landmark_template).expand(2, 5, 2) + 0.02 * torch.randn(2, 5, 2)
    with torch.no_grad():
        expected = {REPO_ID: models[REPO_ID](pixels).logits,
                    PIN_REPO_ID: models[PIN_REPO_ID](pixels, landmarks=landmarks).logits}
    torch.save({"pixels": pixels, "landmarks": landmarks, "logits": expected}, tmp_path / "expected.pt")
    # each repo by Hub id (resolved in the cache, as after a download) and as a local folder
    sources = {repo_id: [repo_id, str(hub_snapshot(api, repo_id))] for repo_id in models}
    script = HIDE_POI_HF + textwrap.dedent(f"""
        import torch
        from transformers import AutoImageProcessor, AutoModel, AutoModelForImageClassification

        expected = torch.load({str(tmp_path / "expected.pt")!r}, weights_only=True)
        for repo_id, sources in {sources!r}.items():
            extra = {{"landmarks": expected["landmarks"]}} if repo_id.endswith("-pin") else {{}}
            for source in sources:
                for auto_class in (AutoModel, AutoModelForImageClassification, AutoImageProcessor):
                    loaded = auto_class.from_pretrained(source, trust_remote_code=True)
                    module = type(loaded).__module__
                    assert module.startswith("transformers_modules."), (source, auto_class.__name__, module)
                    if auto_class is not AutoImageProcessor:
                        with torch.no_grad():
                            logits = loaded.eval()(expected["pixels"], **extra).logits
                        torch.testing.assert_close(logits, expected["logits"][repo_id])
                    print("LOADED", source, auto_class.__name__, type(loaded).__name__)
        assert not any(name.partition(".")[0] == "poi_hf" for name in sys.modules)
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(api.cache),
           "HF_MODULES_CACHE": str(tmp_path / "modules"), "OMP_NUM_THREADS": "1"}
    # -I: no PYTHONPATH, user site or script folder on sys.path; the cwd is outside the repository
    result = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    loaded = [line.split()[1:] for line in result.stdout.splitlines() if line.startswith("LOADED ")]
    assert len(loaded) == 2 * 2 * 3
    assert {name for *_, name in loaded} == {"TRNForImageClassification", "PINForImageClassification",
                                             "POIImageProcessor"}


@pytest.fixture
def hub_cache(published, monkeypatch) -> Path:
    """Point this process's Hub downloads at the fake Hub (offline, as the tests run)."""
    api, _ = published
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(api.cache))
    return api.cache


@pytest.mark.parametrize("where", ["hub_id", "downloaded_folder"])
def test_fer_pipeline_finds_the_pin_of_a_hub_trn(published, hub_cache, where):
    api, models = published
    model = REPO_ID if where == "hub_id" else str(hub_snapshot(api, REPO_ID))  # a folder without a sibling pin/
    fer = pipeline("facial-expression-recognition", model=model, face_detector=HaarFaceDetector(),
                   trust_remote_code=False)
    assert fer.model.config.pin_model == PIN_REPO_ID and fer.pin_model.name_or_path == PIN_REPO_ID
    for name, weight in models[PIN_REPO_ID].state_dict().items():
        torch.testing.assert_close(fer.pin_model.state_dict()[name], weight)
    assert isinstance(fer.pin_image_processor, POIImageProcessor)
    assert fer(Image.new("RGB", (64, 64)), allow_no_face=True) == []
    assert pipeline("facial-expression-recognition", model=model, pin_model=False, face_detector=HaarFaceDetector(),
                    trust_remote_code=False).pin_model is None


def test_a_named_pin_that_cannot_be_found_fails_clearly(published, hub_cache, tmp_path):
    api, _ = published
    trn = tmp_path / "trn"
    trn.mkdir()
    for path in hub_snapshot(api, REPO_ID).iterdir():
        (trn / path.name).write_bytes(path.read_bytes())
    config = json.loads((trn / "config.json").read_text())
    (trn / "config.json").write_text(json.dumps({**config, PIN_MODEL_KEY: "someone/deleted-pin"}))
    with pytest.raises(OSError, match="(?s)PIN checkpoint 'someone/deleted-pin'.*'pin_model'.*couldn't connect.*"
                                      "Pass pin_model=False"):
        pipeline("facial-expression-recognition", model=str(trn), face_detector=HaarFaceDetector(),
                 trust_remote_code=False)
    fer = pipeline("facial-expression-recognition", model=str(trn), pin_model=False, face_detector=HaarFaceDetector(),
                   trust_remote_code=False)
    assert fer.pin_model is None
