#!/usr/bin/env bash
# A Spark standalone cluster on this machine, from the pyspark installed in .venv:
# one master and CLUSTER_WORKERS workers, every port bound to 127.0.0.1.
#
#   cluster/cluster.sh up       start what is not running; wait until every worker registered
#   cluster/cluster.sh down     stop the workers, then the master, by their pid files
#   cluster/cluster.sh status   what runs, as the master reports it
#   cluster/cluster.sh submit JOB [ARGS...]
#                               spark-submit JOB to the cluster in client mode, with the
#                               newest dist/recsys_spark-*.whl as --py-files (shipped
#                               under a .zip name) and the Delta jars of jars/ as --jars;
#                               ARGS go to the job
#
# Logs, pid files and the workers' scratch folders live under CLUSTER_DIR (.cluster/).
# Settings (environment): CLUSTER_PORT 7077, CLUSTER_UI_PORT 8080 (the master's web UI
# and JSON; workers use the next ports), CLUSTER_WORKERS 2, CLUSTER_WORKER_CORES 1,
# CLUSTER_WORKER_MEMORY 2g, CLUSTER_TIMEOUT 120 (seconds to wait for the workers);
# submit: CLUSTER_MASTER (default this cluster), CLUSTER_DRIVER_MEMORY 2g,
# CLUSTER_EXECUTOR_MEMORY 1g, CLUSTER_TOTAL_CORES 2 (one 1-core executor per worker).
set -euo pipefail

cd "$(dirname "$0")/.."
PROJECT=$PWD
VENV=${VENV:-$PROJECT/.venv}
PY=$VENV/bin/python
HOST=127.0.0.1
PORT=${CLUSTER_PORT:-7077}
UI_PORT=${CLUSTER_UI_PORT:-8080}
WORKERS=${CLUSTER_WORKERS:-2}
WORKER_CORES=${CLUSTER_WORKER_CORES:-1}
WORKER_MEMORY=${CLUSTER_WORKER_MEMORY:-2g}
TIMEOUT=${CLUSTER_TIMEOUT:-120}
STATE=${CLUSTER_DIR:-$PROJECT/.cluster}
MASTER_URL=spark://$HOST:$PORT
JSON_URL=http://$HOST:$UI_PORT/json/

die() {
    echo "cluster: error: $*" >&2
    exit 1
}

spark_env() {
    [[ -x $PY ]] || die "$PY not found: run make setup first"
    command -v curl >/dev/null || die "curl not found (it polls the master's JSON): apt-get install curl"
    [[ -x $VENV/bin/spark-class ]] || die "$VENV/bin/spark-class not found: is pyspark installed in $VENV?"
    if [[ -z ${JAVA_HOME:-} ]]; then
        local java
        java=$(command -v java) || die "java not found: install OpenJDK 17 or set JAVA_HOME"
        JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$java")")")
    fi
    # find-spark-home would ask the system python3, which has no pyspark: name it here.
    SPARK_HOME=$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
    # Every daemon, and the executors the workers fork, bind to loopback only (web UIs too)
    # and run Python workers with the venv's interpreter (numpy, pandas, pyarrow, scipy).
    export JAVA_HOME SPARK_HOME
    export SPARK_LOCAL_IP=$HOST SPARK_LOCAL_HOSTNAME=$HOST
    export PYSPARK_PYTHON=$PY
    export SPARK_DAEMON_MEMORY=${SPARK_DAEMON_MEMORY:-512m}
    # Jobs come in through spark-submit on 7077 only: no REST submission port.
    export SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false ${SPARK_MASTER_OPTS:-}"
}

# pid_alive FILE: the pid in FILE runs a master or worker JVM (not a recycled pid).
pid_alive() {
    local pid
    [[ -f $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    grep -qaE 'org\.apache\.spark\.deploy\.(master\.Master|worker\.Worker)' "/proc/$pid/cmdline" 2>/dev/null
}

port_in_use() {
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

alive_workers() {
    curl -fsS --max-time 3 "$JSON_URL" 2>/dev/null | "$PY" -c '
import json, sys
print(sum(w.get("state") == "ALIVE" for w in json.load(sys.stdin).get("workers", [])))
' 2>/dev/null || echo 0
}

# start NAME CLASS ARGS...: run a Spark daemon in the background, record its pid.
start() {
    local name=$1
    shift
    if pid_alive "$STATE/$name.pid"; then
        echo "cluster: $name already running (pid $(<"$STATE/$name.pid"))"
        return
    fi
    rm -f "$STATE/$name.pid"
    # The previous run's log stays as NAME.log.1 for a post-mortem.
    [[ -f $STATE/logs/$name.log ]] && mv -f "$STATE/logs/$name.log" "$STATE/logs/$name.log.1"
    # spark-class execs java, so $! is the JVM's pid. nohup: the daemon outlives make.
    nohup "$VENV/bin/spark-class" "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null &
    local pid=$! i
    echo "$pid" >"$STATE/$name.pid"
    # Until the forked shell has exec'd nohup and spark-class, /proc/PID/cmdline is still
    # this script's and pid_alive says "not running": on a busy machine the wait loop in
    # up() took such a daemon for dead. Wait (up to 30 s) for the exec, or for the exit.
    for ((i = 0; i < 300; i++)); do
        pid_alive "$STATE/$name.pid" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "cluster: started $name (pid $pid, log $STATE/logs/$name.log)"
}

up() {
    spark_env
    mkdir -p "$STATE/logs" "$STATE/work"
    local started_master=false running=0 i
    pid_alive "$STATE/master.pid" || started_master=true
    for ((i = 1; i <= WORKERS; i++)); do
        pid_alive "$STATE/worker-$i.pid" && running=$((running + 1))
    done
    if ! $started_master && ((running == WORKERS)); then
        echo "cluster: already running at $MASTER_URL ($(alive_workers) of $WORKERS workers alive; UI $JSON_URL)"
        return
    fi
    if $started_master; then
        port_in_use "$PORT" && die "port $HOST:$PORT is taken by another process (not ours: no live $STATE/master.pid); stop it or set CLUSTER_PORT"
        port_in_use "$UI_PORT" && die "port $HOST:$UI_PORT is taken by another process; set CLUSTER_UI_PORT"
    fi
    start master org.apache.spark.deploy.master.Master \
        --host "$HOST" --port "$PORT" --webui-port "$UI_PORT"
    for ((i = 1; i <= WORKERS; i++)); do
        # A stopped worker's scratch (its executors' copies of the jars, logs) is stale.
        pid_alive "$STATE/worker-$i.pid" || rm -rf "$STATE/work/worker-$i"
        mkdir -p "$STATE/work/worker-$i"
        start "worker-$i" org.apache.spark.deploy.worker.Worker \
            --host "$HOST" --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" \
            --webui-port $((UI_PORT + i)) --work-dir "$STATE/work/worker-$i" "$MASTER_URL"
    done
    local start_time=$SECONDS alive=0 name
    while :; do
        for name in master $(seq -f 'worker-%g' 1 "$WORKERS"); do
            pid_alive "$STATE/$name.pid" && continue
            echo "cluster: $name exited; last lines of $STATE/logs/$name.log:" >&2
            tail -n 20 "$STATE/logs/$name.log" >&2 || true
            die "$name did not start; fix the cause above, then make cluster-down && make cluster-up"
        done
        alive=$(alive_workers)
        ((alive >= WORKERS)) && break
        if ((SECONDS - start_time >= TIMEOUT)); then
            tail -n 5 "$STATE"/logs/master.log "$STATE"/logs/worker-*.log >&2 || true
            die "only $alive of $WORKERS workers registered with $MASTER_URL after ${TIMEOUT}s (logs in $STATE/logs); make cluster-down stops what started"
        fi
        sleep 1
    done
    echo "cluster: up at $MASTER_URL with $alive workers (${WORKER_CORES} core, $WORKER_MEMORY each) after $((SECONDS - start_time))s; master UI $JSON_URL"
}

# stop NAME: TERM the daemon, KILL it after 20 s; forget its pid file either way.
stop() {
    local file=$STATE/$1.pid pid i
    if ! pid_alive "$file"; then
        rm -f "$file"
        return 1
    fi
    pid=$(<"$file")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "cluster: $1 (pid $pid) ignored TERM for 20s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
    echo "cluster: stopped $1 (pid $pid)"
}

down() {
    local stopped=0 file name
    # Workers first (each stops its executors), then the master; any worker pid file
    # counts, so a cluster started with more workers stops whole.
    for file in "$STATE"/worker-*.pid "$STATE"/master.pid; do
        [[ -e $file ]] || continue
        name=$(basename "$file" .pid)
        stop "$name" && stopped=$((stopped + 1))
    done
    ((stopped > 0)) || echo "cluster: nothing running (no live pid files in $STATE)"
}

status() {
    local name file
    for file in "$STATE"/master.pid "$STATE"/worker-*.pid; do
        [[ -e $file ]] || continue
        name=$(basename "$file" .pid)
        if pid_alive "$file"; then echo "$name: running (pid $(<"$file"))"; else echo "$name: not running (stale pid file)"; fi
    done
    [[ -x $PY ]] || return 0
    curl -fsS --max-time 3 "$JSON_URL" 2>/dev/null | "$PY" -c '
import json, sys
m = json.load(sys.stdin)
apps = len(m.get("activeapps", []))
print("master %s: %s, cores %s/%s used, %d running apps"
      % (m.get("url"), m.get("status"), m.get("coresused"), m.get("cores"), apps))
for w in m.get("workers", []):
    print("  worker %s: %s, %s cores, %s MB" % (w["id"], w["state"], w["cores"], w["memory"]))
' 2>/dev/null || echo "master JSON $JSON_URL not reachable"
}

submit() {
    local job=${1:-} wheel pyzip jars master=${CLUSTER_MASTER:-$MASTER_URL}
    [[ -n $job ]] || die "usage: $0 submit JOB.py [job args...]"
    shift
    [[ -f $job ]] || die "job script $job not found"
    spark_env
    wheel=$(ls -t dist/recsys_spark-*.whl 2>/dev/null | head -n 1) || true
    [[ -n $wheel ]] || die "no dist/recsys_spark-*.whl: run make wheel"
    # PySpark puts only .zip, .egg and .jar --py-files on the executors' sys.path, not
    # .whl; a pure-Python wheel is a zip archive of the package, so ship it as one.
    pyzip=${wheel%.whl}.zip
    [[ $pyzip -nt $wheel ]] || cp -p "$wheel" "$pyzip"
    jars=$("$PY" -m recsys_spark.session) || die "no Delta jars: run make jars"
    if [[ $master == "$MASTER_URL" ]] && (($(alive_workers) == 0)); then
        die "no cluster with live workers at $MASTER_URL: run make cluster-up"
    fi
    # The driver (client mode) imports the package from the shipped zip too, which holds
    # no conf/: base.yml comes from the checkout.
    export RECSYS_SPARK_CONF_DIR=$PROJECT/conf
    export PYSPARK_DRIVER_PYTHON=$PY
    # Driver on loopback too, so executors reach it at 127.0.0.1.
    set -x
    exec "$VENV/bin/spark-submit" --master "$master" --deploy-mode client \
        --name "recsys-$(basename "$job" .py)" \
        --driver-memory "${CLUSTER_DRIVER_MEMORY:-2g}" \
        --executor-memory "${CLUSTER_EXECUTOR_MEMORY:-1g}" --executor-cores 1 \
        --total-executor-cores "${CLUSTER_TOTAL_CORES:-2}" \
        --conf spark.driver.host="$HOST" --conf spark.driver.bindAddress="$HOST" \
        --conf spark.pyspark.python="$PY" --conf spark.pyspark.driver.python="$PY" \
        --conf spark.log.level="${CLUSTER_LOG_LEVEL:-WARN}" \
        --py-files "$pyzip" --jars "$jars" \
        "$job" "$@"
}

case ${1:-} in
    up) up ;;
    down) down ;;
    status) status ;;
    submit)
        shift
        submit "$@"
        ;;
    *)
        echo "usage: $0 up|down|status|submit JOB [ARGS...]" >&2
        exit 2
        ;;
esac
