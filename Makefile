# recsys-spark: every target sets up what it needs (virtualenv, pinned packages, Delta jars).
# `make help` lists the targets.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CONF ?= conf/local.yml
SET ?=
JARS_STAMP := jars/.resolved
VENV_STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help setup venv jars sample-data ingest demo test bench bench-ingest lint clean

help: ## list every target with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(VENV_STAMP) $(JARS_STAMP) ## create .venv, install pinned packages, fetch the Delta jars

venv: $(VENV_STAMP) ## create .venv and install the pinned packages (re-run when pyproject.toml changes)

$(VENV_STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

jars: $(JARS_STAMP) ## copy delta-spark and its runtime jars from Maven Central into jars/ (cached in ~/.m2)

$(JARS_STAMP): jars/pom.xml
	@command -v mvn >/dev/null || { echo "error: mvn not found; install Maven (apt-get install maven)"; exit 1; }
	@command -v java >/dev/null || { echo "error: java not found; install OpenJDK 17 (apt-get install openjdk-17-jdk-headless)"; exit 1; }
	rm -f jars/*.jar
	mvn --batch-mode --quiet -f jars/pom.xml dependency:copy-dependencies \
	    -DincludeScope=runtime -DoutputDirectory=. -Dmdep.overWriteReleases=true
	@ls jars/*.jar >/dev/null && touch $@

sample-data: setup ## generate the built-in sample interaction log into data/sample/
	$(PY) jobs/generate_sample.py --conf $(CONF) $(SET)

ingest: setup ## ingest the configured source into the Delta tables under storage.root
	$(PY) jobs/ingest.py --conf $(CONF) $(SET)

demo: sample-data ## the main job on built-in sample data (today: generate sample data, ingest it)
	$(PY) jobs/ingest.py --conf $(CONF) $(SET)

test: setup ## run the test suite (one shared local Spark session, tiny data)
	$(PY) -m pytest -q

bench: bench-ingest ## every benchmark; figures go to bench-results/ and BENCHMARKS.md by hand

bench-ingest: setup ## ingest of a generated 5M-event CSV vs a plain CSV -> Delta write
	$(PY) benchmarks/bench_ingest.py $(BENCH_ARGS)

lint: setup ## ruff lint and format check
	$(VENV)/bin/ruff check recsys_spark jobs tests benchmarks
	$(VENV)/bin/ruff format --check recsys_spark jobs tests benchmarks

clean: ## remove generated data, Spark and MLflow state (keeps .venv and jars)
	rm -rf data spark-warehouse metastore_db derby.log mlruns mlflow.db bench-results .pytest_cache
