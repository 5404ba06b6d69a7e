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
.PHONY: help setup openmp venv jars sample-data ingest ingest-catalog maintain demo nightly train-als mlflow-ui test test-fast bench bench-ingest lint clean bench-als quality-als native-blas bench-quality bench-evaluate evaluate similarity bench-similarity quality-similarity bench-nightly bench-catalog bench-cluster bench-ingest-floors

help: ## list every target with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(VENV_STAMP) $(JARS_STAMP) native-blas openmp ## create .venv, install pinned packages, fetch the Delta jars

# LightGBM's wheel (the learned ranker) links the OpenMP runtime libgomp.so.1, which
# Debian ships as libgomp1 (present wherever gcc is). Installed as root when missing;
# without root the command to run is printed and the ranker's import fails clearly.
openmp: ## install Debian's libgomp1 when missing (the LightGBM ranker needs it)
	@if /sbin/ldconfig -p 2>/dev/null | grep -q 'libgomp\.so\.1 '; then \
	    echo "OpenMP runtime: libgomp.so.1 present"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgomp1; \
	else \
	    echo "error: libgomp.so.1 missing: run sudo apt-get install libgomp1"; exit 1; \
	fi

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

ingest-catalog: setup ## MERGE the item catalogue and exclusions (catalog.items / catalog.exclusions) into items / exclusions
	$(PY) jobs/ingest_catalog.py --conf $(CONF) $(SET)

maintain: setup ## OPTIMIZE and VACUUM every table under storage.root (maintenance.retention_hours)
	$(PY) jobs/maintain.py --conf $(CONF) $(SET)

DEMO_ROOT ?= data/lake
# The built-in sample spans sample.start_date + sample.days: 2026-01-01 .. 2026-04-30.
DEMO_RUN_DATE ?= 2026-04-30
RUN_DATE ?= $(shell date -u +%F)

# The sample's catalogue (titles, categories, new and withdrawn items) rides along.
DEMO_CATALOG ?= data/sample/items.csv
# The sample's 20,000 events run as interpreted queries: compiling Java for each of the
# night's ~1,500 tiny queries costs more than it saves (BENCHMARKS.md, bench-nightly; at
# 2M events code generation wins, so conf/local.yml keeps it).
DEMO_SPARK ?= --set spark.codegen=false

demo: sample-data ## the main job, the nightly pipeline, on built-in sample data (every stage, published tables)
	$(PY) jobs/nightly.py --conf $(CONF) --run-date $(DEMO_RUN_DATE) --set storage.root=$(DEMO_ROOT) \
	    --set catalog.items.source=$(DEMO_CATALOG) $(DEMO_SPARK) $(SET)
	@echo "published: $(DEMO_ROOT)/recommendations (run_date=$(DEMO_RUN_DATE)), $(DEMO_ROOT)/recommendations_latest"
	@echo "report:    $(DEMO_ROOT)/reports/nightly/$(DEMO_RUN_DATE)/report.html (and metrics.json)"
	@echo "MLflow:    run 'nightly $(DEMO_RUN_DATE)' in mlflow.db; make mlflow-ui"

nightly: setup ## the nightly pipeline for RUN_DATE (default today, UTC): ingest ... publish
	$(PY) jobs/nightly.py --conf $(CONF) --run-date $(RUN_DATE) $(SET)

train-als: setup ## implicit ALS (optionally tuned) and top-N for every user with the popularity fallback
	$(PY) jobs/train_als.py --conf $(CONF) $(SET)

# The experiment's runs page is printed first: MLflow 3's home page is a GenAI overview.
mlflow-ui: setup ## serve the MLflow UI of the default SQLite store on 127.0.0.1:5000 (prints the runs page)
	@$(PY) -c "import mlflow; mlflow.set_tracking_uri('sqlite:///mlflow.db'); \
	    e = mlflow.get_experiment_by_name('recsys-spark'); \
	    print('runs: http://127.0.0.1:5000/#/experiments/%s/runs' % e.experiment_id if e \
	          else 'no recsys-spark experiment yet: run make demo first')" 2>/dev/null
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

# Two pytest workers (pytest-xdist), each with its own local[2] session; a file's tests stay
# on one worker, in order (--dist loadfile), so module fixtures are built once.
PYTEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

test: setup ## every test: unit tests, real nights and notebooks (e2e), the nightly on a 2-worker cluster
	$(PYTEST)

test-fast: setup ## the unit tests only (no real nights, notebooks or cluster)
	$(PYTEST) -m "not e2e and not cluster"

bench: bench-ingest bench-ingest-floors bench-als bench-quality bench-evaluate bench-similarity bench-nightly bench-catalog bench-cluster ## every benchmark; figures go to bench-results/ and BENCHMARKS.md by hand

bench-catalog: setup ## rules and content neighbours: cost vs a plain night, and new items' recall before/after, 2M events
	$(PY) benchmarks/bench_catalog.py $(BENCH_ARGS)

bench-nightly: setup ## the nightly end to end at 0.5M, 2M and 8M events: stage times, peak memory, growth
	$(PY) benchmarks/bench_nightly.py $(BENCH_ARGS)

bench-cluster: setup wheel ## the sample nightly in local mode beside the 2-worker standalone cluster
	$(PY) benchmarks/bench_cluster.py $(BENCH_ARGS)

bench-ingest: setup ## ingest vs a plain CSV -> Delta write: 5M generated events, and a 100K-event 22-year backfill
	$(PY) benchmarks/bench_ingest.py $(BENCH_ARGS)
	$(PY) benchmarks/bench_ingest.py --backfill $(BENCH_ARGS)

bench-ingest-floors: setup ## each piece of the ingest alone (read, validate, cache, write) vs the plain write, warm JVM
	$(PY) benchmarks/ingest_floors.py $(BENCH_ARGS)

bench-als: setup ## ALS fits (MLlib, conjugate gradient) and top-10 to Delta against the implicit library, 2M events
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/bench_als.py $(BENCH_ARGS)

bench-quality: setup ## most-popular, item-based jaccard/cosine, ALS and EASE on MovieLens-100K (BASELINES.md protocol) beside the published rows
	$(PY) benchmarks/bench_quality.py $(BENCH_ARGS)

bench-evaluate: setup ## every evaluation metric, 50K users' top-10 vs a 500K-row test split, against the ALS top-N step
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

# A Spark standalone cluster on 127.0.0.1 from the pyspark in .venv (cluster/cluster.sh;
# logs and pids in .cluster/). JOB, CLUSTER_CONF, JOB_ARGS and SET shape a submission;
# CLUSTER_WORKERS, CLUSTER_WORKER_MEMORY, CLUSTER_PORT... the cluster (see the script).
.PHONY: wheel cluster-up cluster-down cluster-status submit-cluster nightly-cluster cluster-ci
JOB ?= jobs/nightly.py
JOB_ARGS ?=
CLUSTER_CONF ?= conf/cluster.yml

wheel: venv ## build the pure-Python wheel dist/recsys_spark-<version>-py3-none-any.whl
	rm -f dist/recsys_spark-*
	$(PY) -m pip wheel --quiet --no-deps . -w dist/

cluster-up: setup ## start a standalone master and 2 workers on 127.0.0.1; waits until both registered
	cluster/cluster.sh up

cluster-down: ## stop the standalone cluster (by the pid files in .cluster/)
	cluster/cluster.sh down

cluster-status: ## the standalone cluster's processes and workers
	cluster/cluster.sh status

submit-cluster: setup wheel ## spark-submit JOB (default jobs/nightly.py) to the cluster with CLUSTER_CONF
	cluster/cluster.sh submit $(JOB) --conf $(CLUSTER_CONF) $(JOB_ARGS) $(SET)

nightly-cluster: ## the nightly for RUN_DATE (default today, UTC) on the standalone cluster
	$(MAKE) submit-cluster JOB=jobs/nightly.py JOB_ARGS="--run-date $(RUN_DATE)"

cluster-ci: setup wheel ## cluster-up, the nightly on fresh sample data, check published tables, cluster-down
	cluster/ci.sh

lint: setup ## ruff lint and format check
	$(VENV)/bin/ruff check recsys_spark jobs tests benchmarks
	$(VENV)/bin/ruff format --check recsys_spark jobs tests benchmarks

clean: ## remove generated data, Spark and MLflow state (keeps .venv and jars)
	rm -rf data spark-warehouse metastore_db derby.log mlruns mlflow.db bench-results .pytest_cache
