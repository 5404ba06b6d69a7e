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
.PHONY: help setup venv jars sample-data ingest demo train-als mlflow-ui test bench bench-ingest lint clean bench-als quality-als native-blas bench-quality bench-evaluate evaluate similarity bench-similarity quality-similarity

help: ## list every target with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(VENV_STAMP) $(JARS_STAMP) native-blas ## create .venv, install pinned packages, fetch the Delta jars

# Spark ALS runs its normal equations through netlib, which uses a native libblas.so.3
# when one resolves (Debian's OpenBLAS) and a slower Java BLAS otherwise. Best effort:
# installs only as root with apt-get, and never fails the build.
native-blas: ## install Debian's libopenblas0-pthread for faster ALS fits when possible (best effort)
	@if /sbin/ldconfig -p 2>/dev/null | grep -q 'libblas\.so\.3 '; then \
	    echo "native BLAS: libblas.so.3 present"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas0-pthread) \
	        || echo "warning: could not install libopenblas0-pthread; ALS falls back to Java BLAS"; \
	else \
	    echo "note: for faster ALS fits run: sudo apt-get install libopenblas0-pthread (optional)"; \
	fi

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

DEMO_ROOT ?= data/lake

demo: sample-data ## the main job on built-in sample data: ingest, similarities, ALS, evaluation
	$(PY) jobs/ingest.py --conf $(CONF) --set storage.root=$(DEMO_ROOT) $(SET)
	$(PY) jobs/similarity.py --conf $(CONF) --set storage.root=$(DEMO_ROOT) $(SET)
	$(PY) jobs/train_als.py --conf $(CONF) --set storage.root=$(DEMO_ROOT) $(SET)
	@echo "== evaluation: models retrained on the training split only, scored on the held-out pairs"
	$(PY) jobs/evaluate.py --conf $(CONF) --set storage.root=$(DEMO_ROOT) --prepare $(SET)
	$(PY) jobs/similarity.py --conf $(CONF) --set storage.root=$(DEMO_ROOT)/holdout $(SET)
	$(PY) jobs/train_als.py --conf $(CONF) --set storage.root=$(DEMO_ROOT)/holdout $(SET)
	$(PY) jobs/evaluate.py --conf $(CONF) --set storage.root=$(DEMO_ROOT) $(SET)
	@echo "tables: $(DEMO_ROOT)/ (recommendations, item_similarity, als_*); report: $(DEMO_ROOT)/reports/evaluation/report.html; MLflow: make mlflow-ui"

train-als: setup ## implicit ALS (optionally tuned) and top-N for every user with the popularity fallback
	$(PY) jobs/train_als.py --conf $(CONF) $(SET)

mlflow-ui: setup ## serve the MLflow UI of the default SQLite store on 127.0.0.1:5000
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

test: setup ## run the test suite (one shared local Spark session, tiny data)
	$(PY) -m pytest -q

bench: bench-ingest bench-als bench-quality bench-evaluate bench-similarity ## every benchmark; figures go to bench-results/ and BENCHMARKS.md by hand

bench-ingest: setup ## ingest of a generated 5M-event CSV vs a plain CSV -> Delta write
	$(PY) benchmarks/bench_ingest.py $(BENCH_ARGS)

bench-als: setup ## ALS fit (Java vs native BLAS) and top-10 for all users vs Spark, 2M events
	$(PY) benchmarks/bench_als.py $(BENCH_ARGS)

bench-quality: setup ## every model on MovieLens-100K (BASELINES.md protocol) beside the published rows
	$(PY) benchmarks/bench_quality.py $(BENCH_ARGS)

bench-evaluate: setup ## all evaluation metrics for top-10 lists of 50K users vs a 500K-row test split
	$(PY) benchmarks/bench_evaluate.py $(BENCH_ARGS)

evaluate: setup ## score every model's lists and the most-popular baseline; metrics.json + report.html
	$(PY) jobs/evaluate.py --conf $(CONF) $(SET)

quality-als: setup ## tuned implicit ALS on MovieLens-100K (BASELINES.md protocol): P@10, NDCG@10, MAP
	$(PY) benchmarks/quality_als.py $(BENCH_ARGS)

similarity: setup ## item-item similarities, item-based top-N and similar items (jobs/similarity.py)
	$(PY) jobs/similarity.py --conf $(CONF) $(SET)

bench-similarity: setup ## co-occurrence + Jaccard + top-50 vs a Spark SQL self-join and scipy, 2M events
	$(PY) benchmarks/bench_similarity.py $(BENCH_ARGS)

quality-similarity: setup ## every similarity measure on MovieLens-100K (BASELINES.md protocol)
	$(PY) benchmarks/quality_similarity.py $(BENCH_ARGS)

lint: setup ## ruff lint and format check
	$(VENV)/bin/ruff check recsys_spark jobs tests benchmarks
	$(VENV)/bin/ruff format --check recsys_spark jobs tests benchmarks

clean: ## remove generated data, Spark and MLflow state (keeps .venv and jars)
	rm -rf data spark-warehouse metastore_db derby.log mlruns mlflow.db bench-results .pytest_cache
