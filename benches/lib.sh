# Shared set-up of the benchmark scripts (sourced by benches/*/run.sh; they set -euo pipefail).
# Needs REPO, WORK and HUGE set by the caller; defines OVS_DPDK and VECSWITCH.

# clang, DPDK (testpmd is in dpdk-dev) and OVS, if missing.
bench_install() {
    local need=()
    command -v clang >/dev/null || need+=(clang)
    command -v dpdk-testpmd >/dev/null || need+=(dpdk dpdk-dev)
    command -v ovs-vswitchd >/dev/null || need+=(openvswitch-switch)
    if [ ${#need[@]} -gt 0 ]; then
        apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends clang dpdk \
            dpdk-dev openvswitch-switch >&2
    fi
}

# OVS-DPDK without installing it (it would take over the openvswitch-switch alternatives):
# the package unpacked into a cache. OVS_DPDK is its ovs-vswitchd-dpdk, or empty.
bench_ovs_dpdk() {
    local cache=/var/cache/vswbench
    local bin=$cache/ovs-dpdk/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
    if [ ! -x $bin ]; then
        mkdir -p $cache && rm -rf $cache/dl $cache/ovs-dpdk && mkdir -p $cache/dl
        if (cd $cache/dl && apt-get download openvswitch-switch-dpdk >&2); then
            dpkg -x $cache/dl/openvswitch-switch-dpdk_*.deb $cache/ovs-dpdk
        fi
    fi
    OVS_DPDK=
    [ -x $bin ] && OVS_DPDK=$bin
    return 0
}

# vecswitch in release mode, in its own target directory unless CARGO_TARGET_DIR says.
bench_build() {
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target-bench}
    VECSWITCH=$CARGO_TARGET_DIR/release/vecswitch
    [ -n "${SKIP_BUILD:-}" ] || (cd "$REPO" && cargo build --release -p vecswitch >&2)
}

# COREPING: the cross-core round-trip probe (benches/src/bin/coreping.rs), built into
# CARGO_TARGET_DIR or target-bench. `bench_coreping` prints the round trip between cores 0
# and 1 in ns: ~80 when the host runs the VM's two vCPUs near each other, ~330 when not.
bench_coreping_build() {
    COREPING=${CARGO_TARGET_DIR:-$REPO/target-bench}/release/coreping
    (cd "$REPO" && CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target-bench} \
        cargo build --release -q -p benches --bin coreping >&2)
}

bench_coreping() {
    "$COREPING" 0 1 200000 | awk '{print $1}'
}

# N more 2 MiB hugepages, mounted on $HUGE; bench_huge_release gives them back.
bench_huge() {
    OLD_HUGE=$(cat /proc/sys/vm/nr_hugepages)
    mkdir -p "$HUGE"
    echo $((OLD_HUGE + $1)) > /proc/sys/vm/nr_hugepages
    mount -t hugetlbfs -o pagesize=2M nodev "$HUGE"
}

bench_huge_release() {
    if mountpoint -q "$HUGE" 2>/dev/null; then umount "$HUGE"; fi
    [ -n "${OLD_HUGE:-}" ] && echo "$OLD_HUGE" > /proc/sys/vm/nr_hugepages
    return 0
}

# OVS daemons detach: stop them by their pidfiles under $WORK.
bench_stop_ovs() {
    local f pid
    for f in "$WORK"/ovs*/ovs-vswitchd.pid "$WORK"/ovs*/ovsdb-server.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f" 2>/dev/null) || continue  # the daemon may have just exited
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    return 0
}

# Waits up to 5 s for every unix socket named (a daemon that has just started).
bench_wait_sockets() {
    local s missing
    for _ in $(seq 50); do
        missing=
        for s in "$@"; do [ -S "$s" ] || missing=$s; done
        [ -z "$missing" ] && return 0
        sleep 0.1
    done
    return 0
}

# Process $1 (nothing when empty) stopped and waited for.
bench_kill() {
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# A dpdk-testpmd that reads its commands from the file it follows (`tail -f FILE | testpmd`):
# process $1 stopped and the `tail` of FILE $2 with it.
bench_kill_testpmd() {
    bench_kill "$1"
    pkill -f "tail -f $2" 2>/dev/null || true
}

# On exit, and on INT and TERM (which exit): the caller's `stop_run`, then the hugepages of
# bench_huge and $WORK go.
bench_traps() {
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

bench_cleanup() {
    set +e
    stop_run
    bench_huge_release
    rm -rf "$WORK"
}
