#!/bin/sh
# Start the Docker daemon where no init system does (no systemd: containers, CI).
#   start-dockerd.sh [LOG] [TIMEOUT]
# Does nothing when a daemon already answers; otherwise starts dockerd in the
# background (logging to LOG, default /var/log/dockerd.log) and waits until it
# answers. Prints "dockerd: started" or "dockerd: running". A lock keeps two
# callers from starting two daemons.
set -eu
LOG=${1:-/var/log/dockerd.log}
TIMEOUT=${2:-60}

answering() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

exec 9>/run/tinytorch-dockerd.lock
flock 9
if answering; then echo "dockerd: running"; exit 0; fi
command -v dockerd >/dev/null || { echo "dockerd: not installed (apt-get install docker.io)" >&2; exit 1; }
# A daemon killed hard leaves its pid files behind, and then refuses to start.
rm -f /var/run/docker.pid /run/docker/containerd/containerd.pid
nohup dockerd >>"$LOG" 2>&1 9>&- &
i=0
while ! answering; do
    i=$((i + 1))
    if [ "$i" -gt "$TIMEOUT" ]; then
        echo "dockerd: did not answer within ${TIMEOUT}s; the end of $LOG:" >&2
        tail -20 "$LOG" >&2
        exit 1
    fi
    sleep 1
done
echo "dockerd: started"
