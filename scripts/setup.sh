#!/usr/bin/env bash
# Installs poi_hf on a fresh machine. Usage: bash scripts/setup.sh [dev]
#  - torch first: where none is installed, torch==2.13.0 (on a CPU-only machine pip takes a local CPU wheel; an
#    unpinned torch would pull a multi-GB CUDA build). A GPU box that already has torch keeps its own.
#  - "dev" adds the test extras and Debian's chromium + chromedriver (headless browser test of the Space).
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch" 2>/dev/null || python -m pip install -q torch==2.13.0
if [[ "${1:-}" == "dev" ]]; then
    python -m pip install -q -e ".[dev]" --config-settings editable_mode=compat
    if ! command -v chromedriver >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
            || echo "warning: could not install chromium; the browser test of the Space will be skipped" >&2
    fi
else
    python -m pip install -q -e ".[space]" --config-settings editable_mode=compat
fi
