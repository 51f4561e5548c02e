# The two commands a newcomer needs (README, first screen), plus a few for developers.
.PHONY: run test bench ui golden setup

# uv from PATH, or the copy scripts/bootstrap installs with pip (then reachable as a module).
UV := $(shell command -v uv >/dev/null 2>&1 && echo uv || echo python3 -m uv)

setup:
	@scripts/bootstrap

## make run   — install everything, then run the main job on the embedded sample data
run: setup
	$(UV) run valuemail run

## make test  — install everything (Chromium included), then run the whole test suite
test:
	@scripts/bootstrap --browser
	$(UV) run pytest -n 2 --dist loadgroup

## make bench — print throughput and peak memory per stage (not a test)
bench: setup
	$(UV) run python -m bench $(BENCH_ARGS)

## make ui    — open the Dagster UI on http://127.0.0.1:3000
ui: setup
	$(UV) run valuemail ui

## make golden — regenerate the golden e-mail files after a deliberate template change
golden: setup
	VALUEMAIL_UPDATE_GOLDEN=1 $(UV) run pytest tests/test_golden_emails.py
