#!/usr/bin/env bash
# Install what trustmesh's tests and demo need on a fresh Debian machine:
# openssh (server and client) for the real-sshd testbed, Graphviz for the
# `graph --format dot` test, busybox, dash and original-awk (BWK awk, the
# awk macOS ships) for the portability tests of the node scripts,
# shellcheck for their lint, and the Rust linters. Safe to
# run again: it installs only what is missing. Needs root (the testbed uses
# Linux namespaces).
set -euo pipefail

need=()
command -v /usr/sbin/sshd >/dev/null 2>&1 || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v dot >/dev/null 2>&1 || need+=(graphviz)
command -v man >/dev/null 2>&1 || need+=(man-db)
command -v busybox >/dev/null 2>&1 || need+=(busybox)
command -v dash >/dev/null 2>&1 || need+=(dash)
command -v original-awk >/dev/null 2>&1 || need+=(original-awk)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing ${need[*]}; run as root (sudo) to install them" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
# sshd refuses to start without its privilege separation folder.
mkdir -p /run/sshd
if command -v rustup >/dev/null 2>&1; then
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
fi
