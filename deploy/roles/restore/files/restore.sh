#!/bin/sh
# Restore an archive written by backup.sh: restore.sh ARCHIVE ROOT NAME IMAGE DB_CONTAINER SOCKET_DIR DISK_DIR
# The hub and students' containers must be stopped (the role does that first); DB_CONTAINER, the classroom's
# PostgreSQL, must run when the archive holds its dumps (the role checks that before anything changes); the
# students' file system must be mounted at DISK_DIR (by a deploy): homes come back as folders, which the hub
# makes homes with quotas again.
set -eu
ARCHIVE=$1 ROOT=$2 NAME=$3 IMAGE=$4 DB_CONTAINER=$5 SOCKET_DIR=$6 DISK_DIR=$7
stage=$(mktemp -d /var/tmp/tinytorch-restore.XXXXXX)
trap 'rm -rf "$stage"' EXIT
tar -C "$stage" -xzf "$ARCHIVE"
if tar -tf "$stage/files.tar" "./${DISK_DIR#"$ROOT"/}" >/dev/null 2>&1 && ! mountpoint -q "$DISK_DIR"; then
    echo "restore: the students' file system is not mounted at $DISK_DIR: deploy the classroom first" >&2
    exit 1
fi
mkdir -p "$ROOT"
tar -C "$ROOT" -xpf "$stage/files.tar"
[ -f "$stage/sqlite/hub_jupyterhub.sqlite" ] && cp -p "$stage/sqlite/hub_jupyterhub.sqlite" "$ROOT/hub/jupyterhub.sqlite"
if [ -f "$stage/sqlite/course_gradebook.db" ]; then
    cp -p "$stage/sqlite/course_gradebook.db" "$ROOT/course/gradebook.db"
    # the backup's copy was made by root; the gradebook is the course's grader's, like its folder (formgrader,
    # the course build and the grading agent's clean-up write it as that user)
    chown --reference="$ROOT/course" "$ROOT/course/gradebook.db"
fi
for dump in "$stage"/postgresql/*.dump; do
    [ -e "$dump" ] || continue
    db=$(basename "$dump" .dump)
    case "$db" in jupyterhub|gradebook) ;; *) echo "skipping $dump: not a database of the classroom" >&2; continue ;; esac
    # The database as it was dumped, owned by its role again (the server's superuser, by peer, on its socket).
    docker exec -i -u postgres "$DB_CONTAINER" sh -c 'dropdb --force --if-exists --host="$1" "$2" \
        && createdb --host="$1" --owner="$2" "$2" \
        && pg_restore --host="$1" --no-owner --role="$2" --exit-on-error --single-transaction --dbname="$2"' \
        sh "$SOCKET_DIR" "$db" <"$dump"
done
for tarball in "$stage"/volumes/*.tar; do
    [ -e "$tarball" ] || continue
    volume=$(basename "$tarball" .tar)
    case "$volume" in "$NAME"-home-*) ;; *) echo "skipping $volume: not a $NAME home volume" >&2; continue ;; esac
    docker volume create "$volume" >/dev/null
    docker run --rm --network none -v "$volume:/v" -v "$stage/volumes:/in:ro" "$IMAGE" \
        sh -c "find /v -mindepth 1 -delete && tar -C /v -xpf /in/$volume.tar"
done
echo "restored $ARCHIVE into $ROOT"
