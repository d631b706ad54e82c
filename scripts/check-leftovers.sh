#!/usr/bin/env bash
# Fails (listing them) if rkind left anything behind on this machine: processes (clusters,
# shims, namespace holders), container cgroups, or mounts under a data directory.
# Usage: scripts/check-leftovers.sh WHAT-JUST-RAN
set -uo pipefail
what="${1:-the tests}"
status=0
procs=$(pgrep -a -f '__rkind-|rkind up|rkind run' | grep -v -e pgrep -e check-leftovers || true)
if [ -n "$procs" ]; then
  printf 'leftover processes after %s:\n%s\n' "$what" "$procs" >&2
  status=1
fi
cgroups=$(ls -d /sys/fs/cgroup/*/rkind/*/ /sys/fs/cgroup/rkind/*/ 2>/dev/null || true)
if [ -n "$cgroups" ]; then
  printf 'leftover cgroups after %s:\n%s\n' "$what" "$cgroups" >&2
  status=1
fi
mounts=$(grep -e rkind-test- -e rkind-run- /proc/self/mountinfo || true)
if [ -n "$mounts" ]; then
  printf 'leftover mounts after %s:\n%s\n' "$what" "$mounts" >&2
  status=1
fi
exit $status
