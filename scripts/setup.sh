#!/usr/bin/env bash
# Create .venv and install the project. torch==2.13.0 goes first: on these machines it is a CPU
# wheel from local disk, while an unpinned torch (pulled in by sentence-transformers) is a
# multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--browser" ]; then
    # `setup.sh --browser` (make test): Chromium and chromedriver from Debian packages for the
    # real-browser test, only when missing. Without root/apt the test skips, unless
    # QA_REQUIRE_BROWSER=1 (.ci/run) makes that an error.
    if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
        exit 0
    fi
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi
    if command -v apt-get >/dev/null && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
        $SUDO apt-get update -q
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
    elif [ "${QA_REQUIRE_BROWSER:-}" = 1 ]; then
        echo "error: /usr/bin/chromium is missing and apt-get (as root) is not available to install it" >&2
        exit 1
    else
        echo "note: no /usr/bin/chromium (apt-get install chromium chromium-driver); the browser test will skip" >&2
    fi
    exit 0
fi
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
