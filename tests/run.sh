#!/usr/bin/env bash
# Run every test of TinyTorch Classroom. Works on a fresh Debian 12 as root:
# installs python3-venv if needed, creates .venv, installs the project with its
# test extras and PyTorch 2.13.0 (comparisons only), then runs pytest.
# Extra arguments go to pytest, e.g.  bash tests/run.sh -m "not slow" -x
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    echo "== installing python3-venv (apt)"
    apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-pip
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
echo "== installing the project and test dependencies into $VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -e '.[test]' 'torch==2.13.0'

# Docker (grader and deploy tests start containers): no systemd here, so start the daemon by hand.
if ! docker info >/dev/null 2>&1; then
    command -v dockerd >/dev/null || { apt-get update -qq && apt-get install -y -qq docker.io debootstrap; }
    echo "== starting dockerd (log: /var/log/dockerd.log)"
    (dockerd >/var/log/dockerd.log 2>&1 &)
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi

# Browser tests: Playwright (a test extra) drives Debian's Chromium, no browser download.
command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

# Deploy tests: Ansible (pinned, with ansible-lint) in deploy/.venv, ssh for the grader-node test.
command -v ssh-keygen >/dev/null || { apt-get update -qq && apt-get install -y -qq openssh-client; }
DEPLOY_DEV=1 DEPLOY_INSTALL_ONLY=1 bash deploy/deploy.sh

export TINYTORCH_DATASETS="${TINYTORCH_DATASETS:-$(cd .. && pwd)/shared/datasets}"
echo "== datasets: $TINYTORCH_DATASETS"
status=0
"$VENV/bin/python" -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure" >&2
    exit 1
fi
exit "$status"
