#!/usr/bin/env bash
# Grade an assignment of the deployed classroom, on the hub host, as root:
#
#   bash deploy/grade.sh 02_tensor                      collect from the exchange, grade, gradebooks, feedback
#   bash deploy/grade.sh 02_tensor --release-feedback   ... and hand the feedback back to the students
#   bash deploy/grade.sh 02_tensor --zip canvas.zip     an LMS download instead of the exchange
#   bash deploy/grade.sh 02_tensor --force              grade again what was graded before
#
# The three steps, each where it can be done safely:
# 1. `nbgrader collect` inside the hub container, as the course's grader: there nbgrader knows each
#    student's uid, and the hub's exchange refuses a submission that claims to be someone else's;
# 2. `autograder grade --no-collect` here, in TINYTORCH_ROOT/course: every submission's visible and
#    hidden tests in its own hardened grading container (autograder/README.md); no student code runs
#    on this host. What it writes is then handed to the grader's uid, who owns the course directory;
# 3. with --release-feedback, `nbgrader release_feedback` inside the hub container.
# Other arguments go to `autograder grade`. The first run installs the autograder's host side
# (pip: .[grader], pinned) into deploy/.grade-venv. Datasets: TINYTORCH_DATASETS, else the deploy's copy
# in TINYTORCH_ROOT/datasets. Settings: TINYTORCH_ROOT (/srv/tinytorch),
# TINYTORCH_NAME (tinytorch), TINYTORCH_GRADER_UID (1999), TINYTORCH_GID (100): the deploy's values.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
ROOT=${TINYTORCH_ROOT:-/srv/tinytorch}
NAME=${TINYTORCH_NAME:-tinytorch}
GRADER_UID=${TINYTORCH_GRADER_UID:-1999}
GID=${TINYTORCH_GID:-100}
VENV=deploy/.grade-venv
COURSE_DIR="$ROOT/course"
HUB="$NAME-hub"

die() { echo "grade.sh: $*" >&2; exit 2; }
[ $# -ge 1 ] && [ "${1#-}" = "$1" ] || die "usage: bash deploy/grade.sh ASSIGNMENT [--release-feedback] [--zip FILE] [--force] ..."
assignment=$1
shift
[ "$(id -u)" = 0 ] || die "run it as root (it starts containers and writes the course directory)"
[ -f "$COURSE_DIR/nbgrader_config.py" ] || die "no course directory at $COURSE_DIR: deploy first (bash deploy/deploy.sh), or set TINYTORCH_ROOT"

release=0 from_zip=0 args=() previous=
for arg in "$@"; do
    case "$arg" in
        --release-feedback) release=1 ;;
        --zip) from_zip=1; args+=("$arg") ;;
        *) [ "$previous" = --zip ] && arg=$(realpath -e "$arg" 2>/dev/null || die "$arg: no such zip file")
           args+=("$arg") ;;
    esac
    previous=$arg
done

course_id=$(sed -n 's/^course_id: *//p' "$ROOT/config/course.yml" | tr -d "\"'")
[ -n "$course_id" ] || die "no course_id in $ROOT/config/course.yml"
course_in_hub=$(sed -n 's/^  course_root: *//p' "$ROOT/config/course.yml" | tr -d "\"'")
[ -n "$course_in_hub" ] || die "no nbgrader.course_root in $ROOT/config/course.yml"
in_hub() {  # in_hub COMMAND...: run it in the hub container, as the course's grader, in the course directory
    docker exec -u "grader-$course_id" -w "$course_in_hub" "$HUB" "$@"
}
docker inspect "$HUB" >/dev/null 2>&1 || die "the hub container $HUB is not running: deploy first (bash deploy/deploy.sh)"

stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -e "$stamp" ]; then
    echo "== installing the autograder's host side into $VENV"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -e "$REPO[grader]"
    rm -f "$VENV"/.installed-* && touch "$stamp"
fi

if [ "$from_zip" = 0 ]; then
    echo "== collecting $assignment from the exchange (in $HUB)"
    in_hub nbgrader collect "$assignment" --update
fi

# The milestones' hidden tests read MNIST and Tiny Shakespeare: the copy the deploy installed.
[ -z "${TINYTORCH_DATASETS:-}" ] && [ -d "$ROOT/datasets" ] && export TINYTORCH_DATASETS="$ROOT/datasets"

# The feedback HTML written here shows students' markdown: nbgrader sanitises it with the settings the
# hub image uses (docker/hub/safe_html/nbgrader_config.py), found on the Jupyter config path.
export JUPYTER_CONFIG_PATH="$REPO/docker/hub/safe_html${JUPYTER_CONFIG_PATH:+:$JUPYTER_CONFIG_PATH}"

# This checkout's autograder, whichever checkout installed the environment (they share it when only the
# dependencies match: the stamp above is pyproject.toml's).
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
echo "== grading $assignment in $COURSE_DIR"
status=0
(cd "$COURSE_DIR" && "$REPO/$VENV/bin/autograder" grade "$assignment" --no-collect "${args[@]}") || status=$?
# What root wrote belongs to the grader, like the rest of the course directory (formgrader writes there).
chown -R --from=0:0 "$GRADER_UID:$GID" "$COURSE_DIR"

if [ "$release" = 1 ] && [ "$status" -ne 2 ]; then
    echo "== releasing the feedback of $assignment (in $HUB)"
    in_hub nbgrader release_feedback "$assignment" || status=$?
fi
exit "$status"
