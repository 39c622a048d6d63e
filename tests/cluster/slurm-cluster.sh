#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for `make test-cluster`.
#
#   tests/cluster/slurm-cluster.sh <command...>
#
# installs Debian's slurm-wlm, munge and slurm-client when missing, starts munged, slurmctld and slurmd
# by hand (no systemd) with a private config, key, state and ports under a temp dir, waits for the node,
# runs <command...> with SLURM_CONF pointing at the cluster, then stops the daemons it started by their
# PIDs (also when the command fails or the script is interrupted) and exits with the command's status.
set -euo pipefail

need_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
    echo "[cluster] installing slurm-wlm, munge, slurm-client (apt)"
    need_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurm-wlm munge slurm-client >/dev/null
fi
# not in root's PATH on every image
export PATH="$PATH:/usr/sbin:/sbin"

CL=$(mktemp -d "${TMPDIR:-/tmp}/dualspace-slurm.XXXXXX")
PIDS=()
STEPD_BEFORE=" $(pgrep -x slurmstepd | tr '\n' ' ' || true) "
stop() {
    local rc=$?
    # cancel what is still queued or running, then stop the daemons this script started, by PID
    [ -n "${SLURM_CONF:-}" ] && scancel --quiet --user "$(id -un)" 2>/dev/null || true
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    # job-step daemons of our jobs (slurmstepd detaches from slurmd): those that were not here before
    for pid in $(pgrep -x slurmstepd); do
        case "$STEPD_BEFORE" in *" $pid "*) ;; *) kill -9 "$pid" 2>/dev/null || true ;; esac
    done
    for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null && [ "$(ps -o stat= -p "$pid" | cut -c1)" != Z ]; then
            echo "[cluster] daemon $pid is still running" >&2
            rc=1
        fi
    done
    if [ "$rc" -ne 0 ]; then
        echo "[cluster] failed (exit $rc); daemon logs:" >&2
        tail -n 20 "$CL"/*.log >&2 2>/dev/null || true
    fi
    if [ "${LINKED_CONF:-0}" = 1 ]; then need_root rm -f "$DEFAULT_CONF"; fi
    rm -rf "$CL"
    echo "[cluster] stopped munged, slurmctld and slurmd (PIDs ${PIDS[*]})"
    exit "$rc"
}
trap stop EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
CTLD_PORT=$(free_port)
SLURMD_PORT=$(free_port)
NODE=$(hostname -s)
# the node's real CPUs and memory (slurmd refuses a node described bigger than it is)
read -r CPUS MEM < <(slurmd -C | awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}}
                                     END {print v["CPUs"], v["RealMemory"]}')
MEM=$(( MEM * 9 / 10 ))

mkdir -p "$CL/state" "$CL/spool" "$CL/munge"
chmod 755 "$CL" "$CL/munge"  # the munge socket's directory must be traversable by every user
dd if=/dev/urandom of="$CL/munge.key" bs=1024 count=1 status=none
chmod 400 "$CL/munge.key"

cat > "$CL/slurm.conf" <<CONF
ClusterName=dualspace-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$CL/munge/munge.socket
SlurmUser=$(id -un)
SlurmdUser=root
StateSaveLocation=$CL/state
SlurmdSpoolDir=$CL/spool
SlurmctldPidFile=$CL/slurmctld.pid
SlurmdPidFile=$CL/slurmd.pid
SlurmctldLogFile=$CL/slurmctld.log
SlurmdLogFile=$CL/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
# every finished job is appended here: the test reads it to see that jobs went through the scheduler
JobCompType=jobcomp/filetxt
JobCompLoc=$CL/jobcomp.txt
# squeue keeps finished jobs this long; the executor plugin reads their final state from squeue
MinJobAge=600
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=test Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$CL/slurm.conf"
# snakemake-executor-plugin-slurm-jobstep (0.6.1) drops SLURM_* variables, SLURM_CONF included, before its
# `srun` inside each job: that srun finds the config only at the default path. Link it there for the run.
DEFAULT_CONF=/etc/slurm/slurm.conf
if [ -e "$DEFAULT_CONF" ] || [ -L "$DEFAULT_CONF" ]; then
    echo "[cluster] $DEFAULT_CONF exists: this machine has a SLURM setup of its own, which" \
         "make test-cluster would shadow; run it on a machine without one" >&2
    exit 1
fi
need_root mkdir -p /etc/slurm
need_root ln -s "$SLURM_CONF" "$DEFAULT_CONF"
LINKED_CONF=1

munged --foreground --force --key-file="$CL/munge.key" --socket="$CL/munge/munge.socket" \
    --pid-file="$CL/munged.pid" --seed-file="$CL/munge.seed" --log-file="$CL/munged.log" 2>>"$CL/munged.err" &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$CL/munge/munge.socket" ] && break; sleep 0.1; done
slurmctld -D -i -f "$SLURM_CONF" >>"$CL/slurmctld.log" 2>&1 &
PIDS+=($!)
slurmd -D -N "$NODE" -f "$SLURM_CONF" >>"$CL/slurmd.log" 2>&1 &
PIDS+=($!)

for i in $(seq 60); do
    state=$(sinfo -h -n "$NODE" -o %t 2>/dev/null || true)
    [ "$state" = "idle" ] && break
    [ "$i" -eq 60 ] && { echo "[cluster] node $NODE never became idle (state '$state')" >&2; exit 1; }
    sleep 0.5
done
echo "[cluster] $NODE idle: $CPUS CPUs, $MEM MB; slurmctld :$CTLD_PORT, slurmd :$SLURMD_PORT; SLURM_CONF=$SLURM_CONF"
export DUALSPACE_SLURM_JOBCOMP="$CL/jobcomp.txt"
"$@"
