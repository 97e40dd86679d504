#!/usr/bin/env bash
# The README's run command: installs what a node needs when run as root on
# Debian (hack/node-deps.sh: containerd, runc, the CNI plugins), builds skiff
# (and the pause its node builds the sandbox image from) and runs
# `skiff server` with the arguments given. As root with containerd it runs a
# local node too, as k3s does; otherwise the control plane alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/node-deps.sh
bash hack/build.sh
exec bin/skiff server "$@"
