# shellcheck shell=bash
# teardown.sh: find and remove daemons that live under one directory, and all
# they leave behind (sourced by scripts/lxd-pair, not run). These are
# scripts/lxd-cluster's own functions, made to take the root and to know
# incusd too; lxd-cluster can source this file instead of its copies (checked
# on the live cluster: the same processes, cgroups and mounts found, and
# `down` then `up` with a running container worked).
#
# Each of those scripts keeps its daemons' data dirs, logs and mounts under a
# root of its own ($ROOT), and starts each daemon with `--logfile $ROOT/...`,
# so the daemon, its helpers (`lxd forkexec ...`, `incusd forkstart ...`),
# LXC's monitors (`[lxc monitor] $ROOT/... NAME`) and the containers below
# them are told from every other LXD or Incus on the machine (the sandbox's,
# another script's) by that root alone.
#
#   source scripts/lib/teardown.sh
#   pid=$(daemon_pid "$ROOT/m1.log")         # the daemon started with that --logfile
#   stop_pids 5 "$pid"                       # SIGTERM, SIGKILL after 5 s
#   remove_root "$ROOT"                      # leftovers, cgroups, mounts, then the dir
#
# Messages go through the caller's `say` and `die`.

# PID of the live lxd or incusd daemon started with `--logfile $1`, if any. No
# other process carries that argument: not the sandbox's daemons, not another
# member, not the helpers. A zombie (killed, not reaped yet) has an empty
# cmdline: it never matches.
daemon_pid() {
    local want=$1 pid
    for pid in $(pgrep -x 'lxd|incusd' || true); do
        if tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qxF -- "$want"; then
            echo "$pid"
            return 0
        fi
    done 2>/dev/null    # a PID that exited meanwhile has no /proc entry
    return 0
}

# Every live process that belongs under root $1: the daemons and helpers
# (`lxd ...`/`incusd ...` naming $1), LXC's monitors (`[lxc monitor]
# $1/.../containers NAME`), and all their descendants, which include the
# containers' own processes. A killed daemon leaves all but itself running.
# Nothing else is ever matched: a process must be one of those naming $1, or
# descend from one. Zombies are dead already.
processes_under() {
    ps -e -o pid=,ppid=,stat=,args= | awk -v root="$1/" '
        {
            pid[NR] = $1; parent[$1] = $2; zombie[$1] = ($3 ~ /^Z/)
            args = $0; sub(/^ *[0-9]+ +[0-9]+ +[^ ]+ +/, "", args)
            if (index(args, root) && args ~ /^(\[lxc monitor\]|([^ ]*\/)?(lxd|incusd)) /) ours[$1] = 1
        }
        END {
            do {
                grew = 0
                for (i = 1; i <= NR; i++) {
                    p = pid[i]
                    if (!(p in ours) && (parent[p] in ours)) { ours[p] = 1; grew = 1 }
                }
            } while (grew)
            for (p in ours) if (!zombie[p]) print p
        }'
}

# The LXC cgroups the processes under root $1 are in (lxc.payload.NAME for a
# container, lxc.monitor.NAME for its monitor), as directory names. LXC
# removes them when it stops a container, not when a killed daemon's
# container is killed: left behind, they make the next container of that name
# land in lxc.payload.NAME-1, and so on.
cgroups_under() {
    local pid
    for pid in $(processes_under "$1"); do
        cat "/proc/$pid/cgroup" 2>/dev/null || true
    done | grep -o 'lxc\.\(payload\|monitor\)\.[^/]*' | sort -u || true
}

# Remove the cgroups named, in every hierarchy, deepest first. rmdir only
# removes an empty cgroup, so one still in use (a same-named container of
# another daemon) is left alone; say so.
remove_cgroups() {
    local name dir
    for name in "$@"; do
        find /sys/fs/cgroup -maxdepth 2 -type d -name "$name" 2>/dev/null |
            while IFS= read -r dir; do
                find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null ||
                    say "cgroup $dir still in use: left in place"
            done
    done
}

# Mount points under root $1 (shmounts, devlxd, a pool's tmpfs, ...), deepest first.
mounts_under() {
    awk -v root="$1/" 'index($5, root) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

# True once none of the PIDs given is alive (zombies count as gone).
all_gone() {
    local pid
    for pid in "$@"; do
        [ -e "/proc/$pid" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null &&
            return 1
    done
    return 0
}

# `stop_pids GRACE PID...`: SIGTERM the daemons, SIGKILL any still alive
# GRACE seconds later (an LXD cluster's last member ignores SIGTERM: it waits
# for a quorum that is gone).
stop_pids() {
    local grace=$1 pid deadline
    shift
    [ $# -gt 0 ] || return 0
    say "stopping daemons (pid $*)"
    kill -TERM "$@" 2>/dev/null || true
    deadline=$((SECONDS + grace))
    until all_gone "$@" || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.1; done
    for pid in "$@"; do
        all_gone "$pid" && continue
        say "pid $pid ignored SIGTERM for $grace s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    done
}

# `remove_root ROOT`: once the daemons under ROOT are stopped, kill what they
# left running (monitors, exec helpers, the containers' own processes), remove
# their cgroups, lazily unmount what is mounted under ROOT (a killed daemon
# leaves its shmounts and devlxd mounts), then remove ROOT. Dies, naming what
# is left, rather than remove a directory something still uses.
remove_root() {
    local root=$1 left cgroups mounts deadline m
    cgroups=$(cgroups_under "$root")    # noted before the kill: the processes know them
    deadline=$((SECONDS + 10))
    while left=$(processes_under "$root") && [ -n "$left" ]; do
        [ "$SECONDS" -lt "$deadline" ] ||
            die "processes still running after SIGKILL: ${left//$'\n'/ }"
        # shellcheck disable=SC2086 # one PID per word
        kill -KILL $left 2>/dev/null || true
        sleep 0.1
    done
    # shellcheck disable=SC2086 # one cgroup name per word
    remove_cgroups $cgroups
    for m in $(mounts_under "$root"); do umount -l "$m"; done
    mounts=$(mounts_under "$root")
    [ -z "$mounts" ] || die "still mounted, not removing $root: ${mounts//$'\n'/ }"
    # --one-file-system: belt and braces, never follow a mount we missed.
    rm -rf --one-file-system "$root"
    [ -z "$(processes_under "$root")" ] && [ -z "$(mounts_under "$root")" ] && [ ! -e "$root" ] ||
        die "something is left under $root"
}
