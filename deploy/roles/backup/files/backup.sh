#!/bin/sh
# Write one archive of a TinyTorch Classroom:
#   backup.sh ROOT NAME OUT_DIR IMAGE KEEP DB_CONTAINER SOCKET_DIR DISK_IMAGE
# Prints the archive's path. SQLite files are copied with the online backup API, PostgreSQL's databases (when
# the classroom has its DB_CONTAINER) dumped with pg_dump (one consistent snapshot each, while the hub runs),
# the rest with tar: the students' file system (homes, exchange) as its files, not as DISK_IMAGE; a home still
# in a Docker volume (a deploy before quotas; moved at the student's next start) by a throw-away container.
set -eu
ROOT=$1 NAME=$2 OUT=$3 IMAGE=$4 KEEP=$5 DB_CONTAINER=$6 SOCKET_DIR=$7 DISK_IMAGE=$8
stamp=$(date -u +%Y%m%dT%H%M%SZ)
stage=$(mktemp -d "$OUT/.staging-$stamp.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# build/ and datasets/ are copies the deploy makes again from the repository.
# (The database's socket is the running server's, not data.)
tar -C "$ROOT" --exclude=./build --exclude=./datasets --exclude=./database/socket \
    --exclude="./${DISK_IMAGE#"$ROOT"/}" --exclude='*.sqlite' \
    --exclude=gradebook.db -cf "$stage/files.tar" .
mkdir "$stage/sqlite"
for db in hub/jupyterhub.sqlite course/gradebook.db; do
    if [ -f "$ROOT/$db" ]; then
        python3 -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))' \
            "$ROOT/$db" "$stage/sqlite/$(echo "$db" | tr / _)"
    fi
done
if docker inspect "$DB_CONTAINER" >/dev/null 2>&1; then
    mkdir "$stage/postgresql"
    for db in jupyterhub gradebook; do  # as the server's superuser, by peer, on its socket
        docker exec -u postgres "$DB_CONTAINER" pg_dump --format=custom --host="$SOCKET_DIR" --dbname="$db" \
            >"$stage/postgresql/$db.dump"
    done
fi
mkdir "$stage/volumes"
for volume in $(docker volume ls -q --filter "name=^$NAME-home-"); do
    docker run --rm --network none -v "$volume:/v:ro" -v "$stage/volumes:/out" "$IMAGE" \
        tar -C /v -cf "/out/$volume.tar" .
done
archive="$OUT/$NAME-$stamp.tar.gz"
tar -C "$stage" -czf "$archive.part" . && mv "$archive.part" "$archive"
chmod 0600 "$archive"
ls -1t "$OUT"/"$NAME"-*.tar.gz | tail -n +"$((KEEP + 1))" | xargs -r rm -f
echo "$archive"
