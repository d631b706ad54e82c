#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and end-to-end tests.
# End-to-end tests start the real rkind binary and drive it with the system's kubectl.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v kubectl >/dev/null || { echo "kubectl is required on PATH for the end-to-end tests" >&2; exit 1; }
# Installs Debian packages the tests need (refreshing the package lists once if needed).
need_pkg() { # need_pkg COMMAND PACKAGE WHY
  command -v "$1" >/dev/null && return 0
  apt-get install -y --no-install-recommends "$2" >/dev/null 2>&1 ||
    { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends "$2" >/dev/null 2>&1; } ||
    { echo "$2 is required: $3" >&2; exit 1; }
}
# The tty tests give kubectl a terminal through util-linux `script`.
need_pkg script bsdutils "the tty tests drive kubectl through util-linux script"
# The trace tests render `rkind trace -o html` in headless Chromium and call the API with curl.
need_pkg chromium chromium "the trace tests check the HTML page in a real browser"
need_pkg curl curl "the trace tests call the debug endpoint without credentials"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# The suite at rkind's first isolation level (namespaces, as root) ...
cargo test --locked "$@"
scripts/check-leftovers.sh "the suite as root"
# ... then at the two others: as a non-root user (rootless: user namespaces, subordinate
# ids from uidmap's newuidmap) and inside an unprivileged podman container.
if [ $# -eq 0 ]; then
  need_pkg newuidmap uidmap "rootless pods map the test user's subordinate ids"
  need_pkg podman podman "the suite also runs inside an unprivileged container"
  # crun refuses these machines' hybrid cgroups; testdata/podman/containers.conf picks runc.
  need_pkg runc runc "podman runs the unprivileged level with runc"
  scripts/test-isolation-levels.sh rootless unprivileged
fi
