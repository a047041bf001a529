.PHONY: install check lint types deadcode test bench

install:
	python3 -m venv .venv && .venv/bin/pip install -e '.[dev]'

check: lint types deadcode test

lint:
	ruff check . && ruff format --check .

types:
	mypy

deadcode:
	vulture --min-confidence 80 bot adapters storage

test:
	pytest

bench:
	python -m bench.core_overhead && python -m bench.history && python -m bench.start \
		&& python -m bench.cold_start \
		&& python -m bench.load --scenario slack-burst && python -m bench.load --scenario discord \
		&& python -m bench.documents && python -m bench.load --scenario mixed && python -m bench.crash \
		&& python -m bench.load --scenario answers && python -m bench.soak
