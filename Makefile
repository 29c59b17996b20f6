# The two commands a new user types:
#   make run    set up everything, then start every process (Ctrl-C stops all)
#   make test   set up everything, then run the linters and the whole test suite
.PHONY: setup run test lint bench clean

setup:
	bash scripts/setup.sh

run: setup
	.venv/bin/lanpya run

test: setup
	bash scripts/setup.sh --test-tools
	.venv/bin/ruff check .
	.venv/bin/python -m pytest $(PYTEST_ARGS)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check lanpya webhook conversations campaigns

# the benchmarks want PostgreSQL (and Redis for the drills); these are the local defaults
bench: setup
	TEST_POSTGRES_URL=$${TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} .venv/bin/python -m bench

clean:
	rm -rf var bot/models .pytest_cache
