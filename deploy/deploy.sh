#!/usr/bin/env bash
# Deploy TinyTorch Classroom to the hosts in inventory.ini (by default: this host).
#
#   bash deploy/deploy.sh                      deploy (first run builds the images)
#   bash deploy/deploy.sh --check --diff       show what would change, change nothing
#   bash deploy/deploy.sh -e hub_https_port=8443 -e course_roster_csv=/path/roster.csv
#   INVENTORY=other.ini bash deploy/deploy.sh  another inventory
#   PLAYBOOK=teardown.yml bash deploy/deploy.sh   (also backup.yml, restore.yml)
#
# Installs what it needs: python3-venv (apt), then Ansible (pinned, for Python 3.11)
# in deploy/.venv; the playbook installs Docker and builds the images itself.
# Every other argument goes to ansible-playbook.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
VENV=deploy/.venv
PYTHON=${DEPLOY_PYTHON:-/usr/bin/python3}
REQUIREMENTS=deploy/requirements.txt
[ "${DEPLOY_DEV:-0}" = 1 ] && REQUIREMENTS=deploy/requirements-dev.txt

if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    echo "== installing python3-venv (apt)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# Reinstall only when the pinned requirements changed since the last install.
stamp="$VENV/.installed-$(cat deploy/requirements*.txt | sha256sum | cut -c1-16)-$(basename "$REQUIREMENTS")"
if [ ! -e "$stamp" ]; then
    echo "== installing Ansible into $VENV ($REQUIREMENTS)"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS"
    rm -f "$VENV"/.installed-* && touch "$stamp"
fi
[ "${DEPLOY_INSTALL_ONLY:-0}" = 1 ] && exit 0

export ANSIBLE_CONFIG="$REPO/deploy/ansible.cfg"
exec "$VENV/bin/ansible-playbook" -i "${INVENTORY:-$REPO/inventory.ini}" \
    "$REPO/deploy/${PLAYBOOK:-site.yml}" "$@"
