#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and end-to-end tests.
# End-to-end tests start the real rkind binary and drive it with the system's kubectl.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v kubectl >/dev/null || { echo "kubectl is required on PATH for the end-to-end tests" >&2; exit 1; }
# The tty tests give kubectl a terminal through util-linux `script`.
if ! command -v script >/dev/null; then
  apt-get install -y --no-install-recommends bsdutils >/dev/null || { echo "util-linux 'script' is required for the tty tests" >&2; exit 1; }
fi
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked "$@"
