#!/bin/sh
# Restore an archive written by backup.sh: restore.sh ARCHIVE ROOT NAME IMAGE
# The hub and students' containers must be stopped (the role does that first).
set -eu
ARCHIVE=$1 ROOT=$2 NAME=$3 IMAGE=$4
stage=$(mktemp -d /var/tmp/tinytorch-restore.XXXXXX)
trap 'rm -rf "$stage"' EXIT
tar -C "$stage" -xzf "$ARCHIVE"
mkdir -p "$ROOT"
tar -C "$ROOT" -xpf "$stage/files.tar"
[ -f "$stage/sqlite/hub_jupyterhub.sqlite" ] && cp -p "$stage/sqlite/hub_jupyterhub.sqlite" "$ROOT/hub/jupyterhub.sqlite"
if [ -f "$stage/sqlite/course_gradebook.db" ]; then
    cp -p "$stage/sqlite/course_gradebook.db" "$ROOT/course/gradebook.db"
    # the backup's copy was made by root; the gradebook is the course's grader's, like its folder (formgrader,
    # the course build and the grading agent's clean-up write it as that user)
    chown --reference="$ROOT/course" "$ROOT/course/gradebook.db"
fi
for tarball in "$stage"/volumes/*.tar; do
    [ -e "$tarball" ] || continue
    volume=$(basename "$tarball" .tar)
    case "$volume" in "$NAME"-home-*) ;; *) echo "skipping $volume: not a $NAME home volume" >&2; continue ;; esac
    docker volume create "$volume" >/dev/null
    docker run --rm --network none -v "$volume:/v" -v "$stage/volumes:/in:ro" "$IMAGE" \
        sh -c "find /v -mindepth 1 -delete && tar -C /v -xpf /in/$volume.tar"
done
echo "restored $ARCHIVE into $ROOT"
