#!/usr/bin/env bash
# Prepare this machine for intagent (run as root on Debian): system packages, then the venv in .venv.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Tools the lab drives, and what Python needs for a venv.
APT_PACKAGES=(openssh-client systemd-container debootstrap debian-archive-keyring iproute2 dpkg-dev util-linux mount)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "setup: intagent needs Python 3.11 or newer as python3" >&2; exit 1; }
[ -x .venv/bin/python ] || python3 -m venv .venv
# Extras: generate (openai, ansible-lint: generated playbooks), test (the suite, and ruff, mypy and
# types-PyYAML for scripts/check.sh).
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[generate,test]'
echo "setup: ready ($(.venv/bin/intagent --version))" >&2
