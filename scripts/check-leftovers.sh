#!/usr/bin/env bash
# Fails (listing them) if this test suite's rkind clusters left anything behind on this
# machine: processes (clusters, shims, namespace holders, `rkind run`), container cgroups,
# or mounts under a test directory. Only the suite's own clusters count: they live in
# temp dirs named rkind-test-* (tests/common, tests/cli.rs) and rkind-run-* (`rkind run`),
# so a cluster a user left running on the machine (`rkind up -d` in
# ~/.local/share/rkind/rkind, say) does not turn the suite red.
# Usage: scripts/check-leftovers.sh WHAT-JUST-RAN
set -uo pipefail
what="${1:-the tests}"
status=0
markers='rkind-test-|rkind-run-'

# Whether process $1 is the suite's: a marker in its command line, its working
# directory, or the homes and kubeconfig in its environment.
is_suite_pid() {
  local pid=$1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -Eq "$markers" && return 0
  readlink "/proc/$pid/cwd" 2>/dev/null | grep -Eq "$markers" && return 0
  tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null |
    grep -E '^(HOME|XDG_DATA_HOME|XDG_STATE_HOME|KUBECONFIG)=' | grep -Eq "$markers"
}

rkind_pids=$(pgrep -f '__rkind-|rkind up|rkind run' || true)
suite_procs=""
foreign_pids=()
for pid in $rkind_pids; do
  [ "$pid" = $$ ] && continue
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
  case "$cmd" in *check-leftovers*|*pgrep*|"") continue ;; esac
  if is_suite_pid "$pid"; then
    suite_procs+="$pid $cmd"$'\n'
  else
    foreign_pids+=("$pid")
  fi
done
if [ -n "$suite_procs" ]; then
  printf 'leftover processes after %s:\n%s' "$what" "$suite_procs" >&2
  status=1
fi

# Data directories of clusters that are not the suite's: the invoking user's default
# data home and cluster index, and the --data-dir of running non-suite clusters.
foreign_dirs=()
for d in "${XDG_DATA_HOME:-$HOME/.local/share}"/rkind/*/; do
  [ -d "$d" ] && foreign_dirs+=("$d")
done
index="${XDG_STATE_HOME:-$HOME/.local/state}/rkind/clusters.json"
if [ -f "$index" ]; then
  while IFS= read -r d; do foreign_dirs+=("$d"); done < <(
    sed -n 's/^ *"dataDir": *"\(.*\)",\{0,1\}$/\1/p' "$index")
fi
foreign_cmds=""
for pid in "${foreign_pids[@]}"; do
  cmd=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null) || continue
  foreign_cmds+="$(tr '\n' ' ' <<<"$cmd")"$'\n'
  d=$(grep -A1 -x -- '--data-dir' <<<"$cmd" | tail -n +2 | head -n1)
  [ -n "$d" ] && foreign_dirs+=("$d")
done

# Whether the container cgroup directory $1 belongs to a cluster that is not the
# suite's: its container id is in such a cluster's runtime state or in a command line
# of such a cluster's processes (shims name their container's state directory), or a
# process in it descends from one of them.
is_foreign_cgroup() {
  local cg=${1%/} id d pid p
  id=$(basename "$cg")
  for d in "${foreign_dirs[@]}"; do
    [ -e "${d%/}/runtime/containers/$id" ] && return 0
  done
  grep -qF -- "$id" <<<"$foreign_cmds" && return 0
  for pid in $(cat "$cg/cgroup.procs" 2>/dev/null); do
    p=$pid
    while [ -n "$p" ] && [ "$p" -gt 1 ]; do
      for f in "${foreign_pids[@]}"; do [ "$p" = "$f" ] && return 0; done
      p=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $2}')
    done
  done
  return 1
}

cgroups=""
for cg in /sys/fs/cgroup/*/rkind/*/ /sys/fs/cgroup/rkind/*/; do
  [ -d "$cg" ] || continue
  is_foreign_cgroup "$cg" || cgroups+="$cg"$'\n'
done
if [ -n "$cgroups" ]; then
  printf 'leftover cgroups after %s:\n%s' "$what" "$cgroups" >&2
  status=1
fi

mounts=$(grep -E "$markers" /proc/self/mountinfo || true)
if [ -n "$mounts" ]; then
  printf 'leftover mounts after %s:\n%s\n' "$what" "$mounts" >&2
  status=1
fi
exit $status
