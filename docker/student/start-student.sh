#!/bin/sh
# Entry point of the student image.
#
# Started as root by the hub (DockerSpawner) with NB_USER=<hub name> and
# NB_UID=<that student's own uid>: make that passwd entry, own the home volume,
# then drop every privilege and run the server as the student. nbgrader names
# submissions after getpwuid(getuid()) and the exchange's permissions trust the
# uid, so one uid per student is what keeps students from submitting as each
# other or reading each other's work.
# Started as any other user (docker run on its own): just run the command.
set -eu

if [ "$(id -u)" != 0 ]; then
    exec "$@"
fi

NB_GID=${NB_GID:-100}
case "${NB_USER:-}" in
    ""|*[!a-z0-9_-]*|[!a-z_]*) echo "start-student: NB_USER '${NB_USER:-}' is not a valid user name" >&2; exit 64 ;;
esac
case "${NB_UID:-}" in
    ""|*[!0-9]*) echo "start-student: NB_UID '${NB_UID:-}' is not a number" >&2; exit 64 ;;
esac
if [ "$NB_UID" -lt 1000 ]; then
    echo "start-student: refusing NB_UID $NB_UID below 1000" >&2; exit 64
fi
HOME=${HOME:-/home/student}

# One passwd line for this student, replacing any entry with the same name or uid.
grep -v -e "^${NB_USER}:" -e "^[^:]*:[^:]*:${NB_UID}:" /etc/passwd > /tmp/passwd.new
echo "${NB_USER}:x:${NB_UID}:${NB_GID}::${HOME}:/bin/bash" >> /tmp/passwd.new
cat /tmp/passwd.new > /etc/passwd && rm -f /tmp/passwd.new

# A new volume starts owned by the image's default user: hand it over once, with the welcome page.
if [ "$(stat -c %u "$HOME")" != "$NB_UID" ]; then
    [ -e "$HOME/WELCOME.md" ] || [ -L "$HOME/WELCOME.md" ] || cp /usr/local/share/tinytorch/WELCOME.md "$HOME/WELCOME.md"
    chown -R "$NB_UID:$NB_GID" "$HOME"
fi
chmod 0700 "$HOME"

export USER="$NB_USER" LOGNAME="$NB_USER" HOME
exec setpriv --reuid="$NB_UID" --regid="$NB_GID" --init-groups \
    --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"
