#!/usr/bin/env bash
# The dashboard test renders the page in headless Chromium: Debian's package, installed once.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
echo "installing chromium for the dashboard test"
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
