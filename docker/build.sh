#!/usr/bin/env bash
# Build the classroom's images, each from a context holding only what it may contain.
#
#   docker/build.sh context NAME DIR   write NAME's build context into DIR (emptied first)
#   docker/build.sh tag DIR            print the content tag of a context (sha256 of its files, 12 hex)
#   docker/build.sh prepare OUT NAME...  write each NAME's context into OUT/NAME and OUT/NAME.tar,
#                                      and print NAME=TAG
#                                      (what the deploy's images role builds from)
#   docker/build.sh build NAME...      base image if missing, then each NAME as tinytorch/NAME:<tag>
#                                      (skipped when that tag exists); prints NAME=IMAGE per image
# NAME is student, hub, postgres or grader (or, for prepare/context only, course: course/, autograder/,
# tinytorch/ and hub_config.py without caches, from which the deploy builds the nbgrader course
# directory with `python -m autograder course`). Environment:
#   PYTHON          a Python with deploy/requirements.txt (jupytext, nbformat, numpy, tqdm), for the student
#                   skeleton (default: python3)
#   BASE_IMAGE      the base to build FROM (default tinytorch/base:bookworm, made by docker/base/build-base.sh;
#                   the images install into its venv, /opt/venv, first on PATH)
#   INSTALL_TORCH   student image: no (default) | wheels (torch wheel from TORCH_WHEEL_DIR) | index
#   TORCH_WHEEL_DIR where the torch==2.13.0 CPU wheel is (default /opt/wheels)
#
# What goes where (the student context never sees solutions, the reference or hidden tests):
#   student: docker/student/ + the tinytorch SKELETON and the milestones (course/milestones/, no
#            solution in them) from `python -m course.build skeleton`
#   hub:     docker/hub/
#   postgres: docker/postgres/ (the classroom's database server: Debian's PostgreSQL)
#   grader:  docker/grader/ + the reference tinytorch/ + autograder/
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
BASE_IMAGE=${BASE_IMAGE:-tinytorch/base:bookworm}
INSTALL_TORCH=${INSTALL_TORCH:-no}
TORCH_WHEEL_DIR=${TORCH_WHEEL_DIR:-/opt/wheels}

die() { echo "build.sh: $*" >&2; exit 1; }

copy_tree() {  # copy_tree SRC DEST: regular files only, no caches
    (cd "$1" && find . -type f ! -path '*/__pycache__/*' ! -path '*/node_modules/*' ! -name '*.pyc' -print0 \
        | xargs -0 -I{} install -D -m 0644 {} "$2/{}")
}

make_context() {
    local name=$1 dir=$2
    rm -rf "$dir" && mkdir -p "$dir"
    if [ "$name" = course ]; then  # not an image: what the deploy builds the nbgrader course from
        # `autograder course` (autograder/coursedir.py) reads course/ through course.build, which reads
        # cells with tinytorch.export; the hidden tests' points go into the TAs' source notebooks;
        # hub_config.py reads the course config
        for part in course autograder tinytorch; do copy_tree "$REPO/$part" "$dir/$part"; done
        install -m 0644 "$REPO/hub_config.py" "$dir/hub_config.py"
        find "$dir" -type d -exec chmod 0755 {} +
        return
    fi
    [ -d "$REPO/docker/$name" ] || die "no image named '$name' (expected docker/$name/)"
    copy_tree "$REPO/docker/$name" "$dir"
    case "$name" in
        student)
            (cd "$REPO" && "$PYTHON" -m course.build skeleton "$dir") >/dev/null \
                || die "could not write the tinytorch skeleton (needs jupytext, nbformat, numpy and tqdm in $PYTHON: deploy/requirements.txt)"
            mkdir -p "$dir/wheels"
            if [ "$INSTALL_TORCH" = wheels ]; then
                ls "$TORCH_WHEEL_DIR"/torch-2.13.0*.whl >/dev/null 2>&1 \
                    || die "INSTALL_TORCH=wheels but no torch-2.13.0 wheel in $TORCH_WHEEL_DIR"
                cp "$TORCH_WHEEL_DIR"/torch-2.13.0*.whl "$dir/wheels/"
            fi
            ;;
        grader)
            copy_tree "$REPO/tinytorch" "$dir/tinytorch"
            if [ -d "$REPO/autograder" ]; then copy_tree "$REPO/autograder" "$dir/autograder"; fi
            ;;
    esac
    chmod 0755 "$dir"/*.sh 2>/dev/null || true
    find "$dir" -type d -exec chmod 0755 {} +
}

context_tag() {  # content hash of a context: file names, modes and bytes, plus the build arguments
    (cd "$1" && find . -type f | LC_ALL=C sort | while read -r f; do
        printf '%s %s\n' "$(stat -c %a "$f")" "$(sha256sum "$f")"; done
     echo "BASE_IMAGE=$BASE_IMAGE INSTALL_TORCH=$INSTALL_TORCH") | sha256sum | cut -c1-12
}

build_one() {
    local name=$1 ctx tag image
    ctx=$(mktemp -d /var/tmp/tinytorch-ctx.XXXXXX)
    make_context "$name" "$ctx"
    tag=$(context_tag "$ctx")
    image="tinytorch/$name:$tag"
    if ! docker image inspect "$image" >/dev/null 2>&1; then
        echo "== building $image" >&2
        DOCKER_BUILDKIT=0 docker build -q --force-rm -t "$image" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
            --build-arg "INSTALL_TORCH=$INSTALL_TORCH" "$ctx" >&2 \
            || { rm -rf "$ctx"; die "building $image failed (see the output above)"; }
    fi
    docker tag "$image" "tinytorch/$name:latest"
    rm -rf "$ctx"
    echo "$name=$image"
}

cmd=${1:-}; shift || true
case "$cmd" in
    context) [ $# = 2 ] || die "usage: build.sh context NAME DIR"; make_context "$1" "$2" ;;
    prepare)
        [ $# -ge 2 ] || die "usage: build.sh prepare OUT NAME..."
        out=$1; shift
        for name in "$@"; do
            make_context "$name" "$out/$name"
            tar -C "$out/$name" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$out/$name.tar" .
            echo "$name=$(context_tag "$out/$name")"
        done ;;
    tag)     [ $# = 1 ] || die "usage: build.sh tag DIR"; context_tag "$1" ;;
    build)
        [ $# -ge 1 ] || die "usage: build.sh build student|hub|grader..."
        "$REPO/docker/base/build-base.sh" "$BASE_IMAGE" >&2
        for name in "$@"; do build_one "$name"; done ;;
    *) die "usage: build.sh context NAME DIR | prepare OUT NAME... | tag DIR | build NAME..." ;;
esac
