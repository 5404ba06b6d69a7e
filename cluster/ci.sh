#!/usr/bin/env bash
# End-to-end check on the standalone cluster: start it, generate the built-in sample log
# into a fresh folder, submit JOB on it, check the tables it published, and stop the
# cluster whatever happened (the exit status is the first failure's).
#
#   cluster/ci.sh                                   # the nightly for RUN_DATE
#   CI_JOB=jobs/ingest.py CI_EXPECT=ingest cluster/ci.sh
#
# Environment: CI_JOB (jobs/nightly.py), CI_EXPECT (nightly; a profile of
# cluster/check_published.py), RUN_DATE (2026-04-30, the last day of the built-in
# sample), CI_DIR (data/cluster-ci: emptied first; sample/ and lake/ under it),
# CLUSTER_CONF (conf/cluster.yml), SET (extra --set options for the job), and the
# CLUSTER_* settings of cluster/cluster.sh.
set -euo pipefail

cd "$(dirname "$0")/.."
PROJECT=$PWD
PY=${VENV:-$PROJECT/.venv}/bin/python
JOB=${CI_JOB:-jobs/nightly.py}
EXPECT=${CI_EXPECT:-nightly}
RUN_DATE=${RUN_DATE:-2026-04-30}
CI_DIR=$(realpath -m "${CI_DIR:-data/cluster-ci}")
CONF=${CLUSTER_CONF:-conf/cluster.yml}
read -r -a EXTRA <<<"${SET:-}"

case $CI_DIR in
    "$PROJECT"/data/?*) ;;
    *) echo "ci: error: CI_DIR must be a folder under $PROJECT/data (it is emptied); got $CI_DIR" >&2; exit 2 ;;
esac

# The run's state stays under CI_DIR: tables, sample log and MLflow store.
COMMON=(--conf "$CONF" --set "storage.root=file://$CI_DIR/lake"
    --set "tracking.uri=sqlite:///$CI_DIR/mlflow.db"
    --set "sample.path=$CI_DIR/sample/events.csv" --set "ingest.source=$CI_DIR/sample/events.csv")
JOB_ARGS=()
[[ $(basename "$JOB") == nightly.py ]] && JOB_ARGS=(--run-date "$RUN_DATE")

# The local sessions (sample, check) bind to loopback like the cluster.
export SPARK_LOCAL_IP=127.0.0.1

trap 'cluster/cluster.sh down' EXIT
trap 'exit 130' INT TERM

timed() {
    local start=$SECONDS
    "$@"
    echo "ci: '$1 ${2:-}' took $((SECONDS - start))s (load: $(cut -d' ' -f1-3 /proc/loadavg))"
}

rm -rf "$CI_DIR"
mkdir -p "$CI_DIR"
timed cluster/cluster.sh up
timed "$PY" jobs/generate_sample.py "${COMMON[@]}" "${EXTRA[@]}"
timed cluster/cluster.sh submit "$JOB" "${COMMON[@]}" "${JOB_ARGS[@]}" "${EXTRA[@]}"
timed "$PY" cluster/check_published.py "${COMMON[@]}" --expect "$EXPECT" --run-date "$RUN_DATE"
echo "ci: $JOB on the standalone cluster published what '$EXPECT' expects under $CI_DIR/lake"
