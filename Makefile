.PHONY: setup browser run test bench

setup:
	bash scripts/setup.sh

# Headless Chromium + chromedriver (Debian packages) for tests/test_browser.py; installed only when missing.
browser:
	bash scripts/setup.sh --browser

run: setup
	HF_HUB_OFFLINE=1 .venv/bin/python app.py

test: setup browser
	HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q

bench: setup
	HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_index.py
