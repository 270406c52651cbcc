#!/usr/bin/env bash
# Runs every test of ocpp-relay on a fresh machine: installs what is missing, builds once, runs the
# Swift unit tests, then the end-to-end tests that drive the built binary with real OCPP peers.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: zlib and SQLite headers for the build, venv support for the Python peers, openssl, nginx,
# PostgreSQL and HAProxy for the tests that use them (the tests start their own servers on loopback), Chromium for
# the console's browser tests, iproute2 for the partition tests (a network namespace, veth, the blackhole qdisc).
missing=()
dpkg -s zlib1g-dev >/dev/null 2>&1 || missing+=(zlib1g-dev)
dpkg -s libsqlite3-dev >/dev/null 2>&1 || missing+=(libsqlite3-dev)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)  # the TLS tests make their own CA
dpkg -s nginx-light >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)  # the benchmark's baseline
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)  # several relays share their state there
command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]] || missing+=(haproxy)  # in front of several relays
command -v chromium >/dev/null 2>&1 || missing+=(chromium)  # the console's browser tests (driven by Playwright)
command -v tc >/dev/null 2>&1 || missing+=(iproute2)  # network namespaces and the blackhole qdisc: partitions
if ((${#missing[@]})); then
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
fi

# The code is formatted as .swift-format says.
swift format lint --strict -r Sources Tests Package.swift

# One build (debug, with tests), reused by the unit tests and the end-to-end tests.
swift build --build-tests
swift test --skip-build

# The real OCPP peers (pinned) in a local venv, reinstalled only when the pins change.
requirements=Tests/EndToEnd/requirements.txt
stamp=.venv/requirements.sha256
wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r "$requirements"
    echo "$wanted" >"$stamp"
fi
OCPP_RELAY_BIN="$(swift build --show-bin-path)/ocpp-relay" .venv/bin/python -m pytest Tests/EndToEnd -q
