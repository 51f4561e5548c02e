# The two commands a newcomer needs (README, first screen), plus a few for developers.
.PHONY: run test bench ui golden setup

setup:
	@scripts/bootstrap

## make run   — install everything, then run the main job on the embedded sample data
run: setup
	uv run valuemail run

## make test  — install everything (Chromium included), then run the whole test suite
test:
	@scripts/bootstrap --browser
	uv run pytest -n 2 --dist loadgroup

## make bench — print throughput and peak memory per stage (not a test)
bench: setup
	uv run python -m bench $(BENCH_ARGS)

## make ui    — open the Dagster UI on http://127.0.0.1:3000
ui: setup
	uv run valuemail ui

## make golden — regenerate the golden e-mail files after a deliberate template change
golden: setup
	VALUEMAIL_UPDATE_GOLDEN=1 uv run pytest tests/test_golden_emails.py
