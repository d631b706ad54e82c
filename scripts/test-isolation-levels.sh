#!/usr/bin/env bash
# Runs the end-to-end suite again at rkind's two other isolation levels (the first,
# namespaces as root, is the plain `cargo test` in scripts/test.sh):
#   rootless      as a non-root user this script creates (rkind-ci), from a world-readable
#                 copy of the test binaries (the checkout may sit where that user cannot go);
#   unprivileged  inside `podman run` with podman's default seccomp profile and capabilities
#                 (no --privileged), whose root is an overlay of this machine's root
#                 filesystem (no image registry involved).
# Each run checks afterwards that no rkind process, cgroup or mount is left over.
# A test file whose doc comment has the line `//! Isolation levels: root only` exercises
# the API server alone (nothing in it depends on how containers are isolated), so it
# runs at the first level only: running it again would add minutes and no coverage.
# Usage: scripts/test-isolation-levels.sh [rootless] [unprivileged]   (both by default)
set -euo pipefail
cd "$(dirname "$0")/.."
levels=("$@")
[ ${#levels[@]} -gt 0 ] || levels=(rootless unprivileged)
[ "$(id -u)" = 0 ] || { echo "run as root: it creates a user and starts podman" >&2; exit 1; }

mapfile -t bins < <(cargo test --locked --no-run 2>&1 | sed -n 's/^ *Executable tests\/.* (\(.*\))$/\1/p')
[ ${#bins[@]} -gt 0 ] || { echo "no test binaries found" >&2; exit 1; }
rkind_bin="$PWD/target/debug/rkind"
failed=()
all_bins=("${bins[@]}")
bins=()
for b in "${all_bins[@]}"; do
  src="tests/$(basename "$b" | sed 's/-[0-9a-f]*$//').rs"
  if grep -q '^//! Isolation levels: root only' "$src" 2>/dev/null; then
    echo "== $(basename "$src"): root level only (no container behaviour under test)"
  else
    bins+=("$b")
  fi
done

# Nothing of rkind's may outlive a level's run.
leftovers() { scripts/check-leftovers.sh "the $1 run"; }

run_rootless() {
  local user=rkind-ci stage
  id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
  # Subordinate ids for its pods' user namespaces (useradd adds them where /etc/subuid
  # exists; make sure either way).
  grep -q "^$user:" /etc/subuid 2>/dev/null || usermod --add-subuids 200000-265535 "$user"
  grep -q "^$user:" /etc/subgid 2>/dev/null || usermod --add-subgids 200000-265535 "$user"
  stage=$(mktemp -d /tmp/rkind-levels-XXXXXX)
  trap 'rm -rf "$stage"' RETURN
  mkdir -p "$stage/bin" "$stage/src"
  cp "${bins[@]}" "$stage/bin/"
  cp "$rkind_bin" "$stage/rkind"
  cp -r scripts docs testdata "$stage/src/"
  chmod -R a+rX "$stage"
  local home
  home=$(getent passwd "$user" | cut -d: -f6)
  for b in "${bins[@]}"; do
    echo "== rootless (user $user): $(basename "$b")"
    runuser -u "$user" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$home" \
      RUST_BACKTRACE=1 RKIND_TEST_BIN="$stage/rkind" RKIND_TEST_SOURCE_DIR="$stage/src" \
      "$stage/bin/$(basename "$b")" || failed+=("rootless: $(basename "$b")")
  done
  leftovers rootless || failed+=("rootless: leftover processes")
}

run_unprivileged() {
  local b
  for b in "${bins[@]}"; do
    echo "== unprivileged (podman): $(basename "$b")"
    CONTAINERS_CONF="$PWD/testdata/podman/containers.conf" \
      podman run --rm --workdir "$PWD" \
      -e RUST_BACKTRACE=1 -e HOME=/tmp -e PATH=/usr/local/bin:/usr/bin:/bin \
      --rootfs /:O "$b" || failed+=("unprivileged: $(basename "$b")")
  done
  leftovers unprivileged || failed+=("unprivileged: leftover processes")
}

for level in "${levels[@]}"; do
  case "$level" in
    rootless) run_rootless ;;
    unprivileged) run_unprivileged ;;
    *) echo "unknown level $level (rootless, unprivileged)" >&2; exit 2 ;;
  esac
done

if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED at another isolation level: %s\n' "${failed[@]}" >&2
  exit 1
fi
