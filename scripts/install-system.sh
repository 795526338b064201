#!/usr/bin/env bash
# Installs the Debian packages the test suite and the main job need: real servers for the
# integration tests (redis, PostgreSQL, Dovecot) and Chromium for the dashboard tests.
# Idempotent and quick when everything is already there.
set -euo pipefail
packages=(redis-server postgresql dovecot-imapd dovecot-lmtpd chromium)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "installing system packages: ${missing[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
