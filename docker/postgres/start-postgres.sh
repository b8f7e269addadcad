#!/bin/sh
# Start the classroom's PostgreSQL: start-postgres.sh SOCKET_DIR
# A new (empty) data folder is initialised first; a data folder of another major version is refused
# with what to do, and left as it is. The server listens on no TCP port, only on SOCKET_DIR/.s.PGSQL.5432.
# Who may log in (pg_hba.conf): the local superuser by peer (the deploy's docker exec), every other role
# by its password (scram-sha-256), nothing over the network.
set -eu
SOCKET_DIR=${1:?usage: start-postgres.sh SOCKET_DIR}
major=$(pg_config --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    initdb --pgdata="$PGDATA" --username=postgres --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=reject >/dev/null
    cat >"$PGDATA/pg_hba.conf" <<'HBA'
# TYPE  DATABASE  USER      METHOD
local   all       postgres  peer
local   sameuser  all       scram-sha-256
HBA
    echo "start-postgres: initialised $PGDATA (PostgreSQL $major)"
fi
have=$(cat "$PGDATA/PG_VERSION")
if [ "$have" != "$major" ]; then
    echo "start-postgres: the data in $PGDATA is PostgreSQL $have, this image runs $major." >&2
    echo "start-postgres: nothing was changed. Restore a pg_dump backup (deploy/backup.yml) into a new volume," >&2
    echo "start-postgres: or run the image of PostgreSQL $have again." >&2
    exit 1
fi
exec postgres -c listen_addresses='' -c unix_socket_directories="$SOCKET_DIR" -c unix_socket_permissions=0777 \
    -c password_encryption=scram-sha-256
