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
# The stamp records what the installed project was made from: while pyproject.toml and this script
# are unchanged (and the project is still installed), pip is not run again, so a second `make run`
# starts serving in seconds. The code itself is installed editable: edits need no reinstall.
STAMP=.venv/.news-qa-installed
wanted=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$wanted" ] \
        && .venv/bin/python -c 'import importlib.metadata as m; m.version("news-qa")' 2>/dev/null; then
    exit 0
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
rm -f "$STAMP"
# pip >= 23.3 matches extras by their normalized names (PEP 685): older pip warns "lxml does not
# provide the extra 'html_clean'" for justext's lxml[html_clean], although lxml does.
.venv/bin/python -m pip install -q --disable-pip-version-check "pip>=23.3"
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
# pip >= 26.3 prints the build backend's warnings; setuptools notes every editable install.
PYTHONWARNINGS="ignore:Editable installation" \
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
echo "$wanted" > "$STAMP"
