#!/usr/bin/env bash
# The trustmesh demo on one machine: `scripts/demo.sh` (as root; run by
# another user, it asks sudo for root itself).
#
# Starts a real cluster with the testbed (a manager and four workers, each a
# real sshd with its own homes, host keys and hostname, on its own loopback
# address), copies inventories/demo.yaml into the manager's home, gives
# alice a key already authorized on node1, node2 and node4 (the state a
# provisioned machine is in; node3 only takes a password), and runs
# trustmesh there as alice: validate, graph, plan, apply (node3 is
# bootstrapped with its password), plan again (nothing left to change),
# verify. The cluster is always stopped at the end, whatever happens.
# When this machine's own sshd listens on 0.0.0.0:22 (which takes port 22
# on every loopback address), the cluster gets a private loopback of its
# own instead, and says so.
#
#   manager  127.0.10.1:22     alice
#   node1    127.0.10.11:22    agilab
#   node2    127.0.10.12:2222  agilab
#   node3    127.0.10.13:22    agilab, password login (demo-pass)
#   node4    127.0.10.14:22    agilab
#
# Needs root (namespaces, accounts) and Debian's openssh-server, installed
# here when /usr/sbin/sshd is missing. TESTBED_KEEP=1 keeps the cluster's
# folders (not its processes) for a look afterwards.

set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
TESTBED=$TARGET/release/testbed
TRUSTMESH=$TARGET/release/trustmesh
INVENTORY=$REPO/inventories/demo.yaml

# Bold headings on a terminal only (and never with NO_COLOR).
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then B=$'\033[1m' R=$'\033[0m'; else B='' R=''; fi
say() { printf '\n%s== %s%s\n' "$B" "$*" "$R"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "needs root (namespaces, accounts): run it as root"
  exec sudo -- "$0" "$@"
fi

# --- what the machine needs -------------------------------------------------
missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ip >/dev/null || missing+=(iproute2)
command -v unshare >/dev/null && command -v nsenter >/dev/null && command -v runuser >/dev/null \
    || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" \
        || die "could not install ${missing[*]}"
fi

# --- build --------------------------------------------------------------------
# Built as the owner of the checkout when they have cargo (their toolchain;
# no root-owned files in their target folder), else as root.
owner=$(stat -c %U "$REPO")
cargo_build() {
    if [ "$owner" != root ] && runuser -u "$owner" -- bash -lc 'command -v cargo' >/dev/null 2>&1; then
        runuser -u "$owner" -- bash -lc 'cd "$1" && shift && cargo build --release "$@"' build "$REPO" "$@"
    else
        command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"
        (cd "$REPO" && cargo build --release "$@")
    fi
}
say "building testbed and trustmesh (cargo build --release)"
if ! cargo_build -p testbed -p trustmesh; then
    echo "trustmesh does not build; building the testbed alone"
    cargo_build -p testbed || die "the testbed does not build"
fi
[ -x "$TESTBED" ] || die "no $TESTBED after the build (CARGO_TARGET_DIR?)"

# --- the cluster ----------------------------------------------------------------
WORK=$(mktemp -d /tmp/trustmesh-demo.XXXXXX)
chmod 755 "$WORK"
STATE=$WORK/state

cleanup() {
    local rc=$?
    local keep=${TESTBED_KEEP:-}
    if [ -f "$STATE/state.json" ]; then
        say "stopping the cluster"
        if ! "$TESTBED" down --state "$STATE"; then
            echo "demo: the cluster did not stop cleanly; its record stays in $STATE" >&2
            keep=1
        fi
    fi
    [ "$keep" = 1 ] || rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# When something listens on 0.0.0.0:22 here (this machine's own sshd), port
# 22 is taken on every loopback address: the testbed then gives the cluster
# a loopback of its own (a network namespace) and says so.
cat >"$WORK/spec.json" <<EOF
{
  "base": "127.0.10.0",
  "host_key_types": ["ed25519", "ecdsa", "rsa"],
  "hosts": [
    { "name": "manager", "users": ["alice"],  "address": "127.0.10.1" },
    { "name": "node1",   "users": ["agilab"], "address": "127.0.10.11" },
    { "name": "node2",   "users": ["agilab"], "address": "127.0.10.12", "port": 2222 },
    { "name": "node3",   "users": ["agilab"], "address": "127.0.10.13", "password": "demo-pass" },
    { "name": "node4",   "users": ["agilab"], "address": "127.0.10.14" }
  ]
}
EOF

say "starting the cluster"
"$TESTBED" up --state "$STATE" --spec "$WORK/spec.json" || die "the cluster did not start"

on_manager() { "$TESTBED" exec --state "$STATE" manager alice -- "$@"; }

if [ ! -f "$INVENTORY" ]; then
    say "no inventories/demo.yaml yet: nothing to run trustmesh on (the cluster worked)"
    exit 0
fi
if [ ! -x "$TRUSTMESH" ]; then
    say "trustmesh is not built yet ($TRUSTMESH is missing): nothing more to show"
    exit 0
fi

# The manager sees the machine's files except /home and /etc/ssh, but alice
# may not reach into the checkout (a 0700 folder above it): the testbed puts
# a copy where every account can run it, and checks it.
TM=$("$TESTBED" share --state "$STATE" "$TRUSTMESH") || die "could not share $TRUSTMESH with the hosts"
on_manager test -x "$TM" || die "alice cannot run $TM"

say "copying inventories/demo.yaml to alice@manager:~/inventory.yaml"
on_manager sh -c 'cat > inventory.yaml' <"$INVENTORY" || die "could not copy the inventory"

# How the workers were provisioned: node1, node2 and node4 came up with
# alice's key already authorized for agilab (as a cloud image or an earlier
# admin would leave them); node3 only takes a password, so `apply
# --ask-pass` installs the key there. Nothing else is set up: no
# known_hosts anywhere, no keys on the workers.
say "provisioning: alice's key on the manager, authorized on node1, node2, node4 (not node3)"
on_manager sh -c 'mkdir -p -m 700 ~/.ssh && ssh-keygen -q -t ed25519 -a 100 -N "" -C alice@manager -f ~/.ssh/id_ed25519' \
    || die "could not make alice's key"
pubkey=$(on_manager cat .ssh/id_ed25519.pub) || die "could not read alice's public key"
for node in node1 node2 node4; do
    printf '%s\n' "$pubkey" | "$TESTBED" exec --state "$STATE" "$node" agilab -- \
        sh -c 'umask 077 && mkdir -p ~/.ssh && cat >> ~/.ssh/authorized_keys' \
        || die "could not authorize alice's key on $node"
    echo "  $node: agilab's ~/.ssh/authorized_keys holds alice@manager"
done

passed=0 failed=0 unbuilt=0
# run MODE "what is shown" ARGS...: run ARGS as alice on the manager and
# show it. MODE "check": a non-zero exit counts as a failure; MODE "look":
# a first look, whose exit status is only reported.
run() {
    local mode=$1 shown=$2
    shift 2
    printf '\n%salice@manager:~$ %s%s\n' "$B" "$shown" "$R"
    local log=$WORK/last.log
    on_manager "$@" </dev/null 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    if grep -q "not built yet" "$log"; then
        echo "-> not built yet (exit $rc)"
        unbuilt=$((unbuilt + 1))
    elif [ "$rc" = 0 ]; then
        echo "-> ok"
        passed=$((passed + 1))
    elif [ "$mode" = look ]; then
        echo "-> exit $rc (expected before apply: no host key is trusted yet)"
    else
        echo "-> FAILED (exit $rc)"
        failed=$((failed + 1))
    fi
}

say "trustmesh on the manager"
run check "trustmesh validate" "$TM" validate
run check "trustmesh graph" "$TM" graph
run look "trustmesh plan" "$TM" plan
run check "TRUSTMESH_PASSWORD=demo-pass trustmesh apply --ask-pass --accept-new-host-keys --yes" \
    env TRUSTMESH_PASSWORD=demo-pass "$TM" apply --ask-pass --accept-new-host-keys --yes
run check "trustmesh plan --detailed-exitcode   # 0: nothing left to change" "$TM" plan --detailed-exitcode
run check "trustmesh verify" "$TM" verify

say "done: $passed ok, $failed failed, $unbuilt not built yet"
[ "$failed" = 0 ]
