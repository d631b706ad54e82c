#!/usr/bin/env bash
# Benchmarks (release build): prints medians and ratios. Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench foundation --bench exec --bench trace --bench watch_memory --bench api_load --bench protobuf --bench workloads --bench identity "$@"
