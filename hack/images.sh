#!/usr/bin/env bash
# Builds the images a skiff node needs without a registry, as OCI archives in
# _output/images/: registry.k8s.io/pause:3.10.2 (cmd/pause, static) and
# registry.k8s.io/e2e-test-images/busybox:1.37.0-2 (Debian's busybox-static).
#
#   hack/images.sh                    build them
#   hack/images.sh --all              also the images of the v1.37.2
#                                     conformance suite (agnhost 2.66.1 and
#                                     2.55, nginx, glibc-dns-testing, nautilus,
#                                     kitten, nonewprivs, sample-apiserver,
#                                     etcd): a Debian rootfs (mmdebstrap,
#                                     cached by package list) and binaries
#                                     from hack/tools/images; an archive whose
#                                     inputs did not change is kept
#   hack/images.sh --import ADDRESS   import them into the containerd at ADDRESS
#                                     (socket path), namespace k8s.io
#   hack/images.sh --registry         run Debian's docker-registry on
#                                     127.0.0.1:5000 (storage _output/registry)
#                                     and push them under their upstream paths
#                                     (127.0.0.1:5000/pause:3.10.2, ...), for a
#                                     containerd mirror registry.k8s.io ->
#                                     http://127.0.0.1:5000
#   hack/images.sh --stop-registry    stop that registry
#   hack/images.sh --verify [E2E]     compare the images the conformance specs
#                                     use and `E2E --list-images` (default:
#                                     hack/upstream.sh's e2e.test) with the
#                                     archives in _output/images; builds
#                                     nothing, exits 1 if one is missing
#
# SKIFF=path uses that skiff binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."

out=_output/images
all=false
import_address=""
registry=false
stop_registry=false
verify=false
verify_e2e=""
registry_addr=127.0.0.1:5000
registry_dir=_output/registry

while [[ $# -gt 0 ]]; do
  case "$1" in
    --all) all=true ;;
    --import) import_address="${2:?--import needs the containerd socket}"; shift ;;
    --registry) registry=true ;;
    --stop-registry) stop_registry=true ;;
    --verify)
      verify=true
      if [[ $# -gt 1 && $2 != --* ]]; then verify_e2e=$2; shift; fi ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

stop_the_registry() {
  local pidfile="$registry_dir/registry.pid"
  if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")"
    echo "stopped docker-registry (pid $(cat "$pidfile"))"
  fi
  rm -f "$pidfile"
}
# archive_name prints the image name an archive of pkg/images holds (the
# io.containerd.image.name annotation of its index.json).
archive_name() {
  tar -xOf "$1" index.json 2>/dev/null |
    grep -o '"io.containerd.image.name":"[^"]*"' | head -1 | cut -d'"' -f4 || true
}

# The images the v1.37.2 conformance specs run (see
# /work/shared/notes/conformance-images.md); the others e2e.test lists are
# used by non-conformance specs only.
conformance_images=(
  registry.k8s.io/pause:3.10.2
  registry.k8s.io/e2e-test-images/busybox:1.37.0-2
  registry.k8s.io/e2e-test-images/agnhost:2.66.1
  registry.k8s.io/e2e-test-images/agnhost:2.55
  registry.k8s.io/e2e-test-images/nginx:1.27.0-2
  registry.k8s.io/e2e-test-images/glibc-dns-testing:2.1.1
  registry.k8s.io/e2e-test-images/nautilus:1.8
  registry.k8s.io/e2e-test-images/kitten:1.8
  registry.k8s.io/e2e-test-images/nonewprivs:1.4
  registry.k8s.io/e2e-test-images/sample-apiserver:1.29.2
  registry.k8s.io/etcd:3.7.0-0
)

verify_images() {
  local e2e=${verify_e2e:-$(bash hack/upstream.sh --print-dir)/e2e.test}
  if [[ ! -x $e2e ]]; then
    echo "no e2e.test at $e2e: build it with hack/upstream.sh e2e.test, or pass its path" >&2
    return 2
  fi
  local listed built f n status=0
  # The default names: KUBE_TEST_REPO_LIST would rename them.
  listed=$(env -u KUBE_TEST_REPO_LIST "$e2e" --list-images 2>/dev/null | sort -u)
  [[ -n $listed ]] || { echo "$e2e --list-images printed nothing" >&2; return 2; }
  built=$(for f in "$out"/*.tar; do [[ -e $f ]] && archive_name "$f"; done | sort -u)
  for n in "${conformance_images[@]}"; do
    if ! grep -qxF "$n" <<<"$listed"; then
      echo "NOT LISTED by e2e.test (renamed upstream?): $n"
      status=1
    fi
    if ! grep -qxF "$n" <<<"$built"; then
      echo "MISSING in $out: $n"
      status=1
    fi
  done
  echo "built, not listed by e2e.test:"
  comm -13 <(echo "$listed") <(echo "$built") | sed 's/^/  /'
  echo "listed by e2e.test, not built (no conformance spec runs them):"
  comm -23 <(echo "$listed") <(echo "$built") | sed 's/^/  /'
  if [[ $status == 0 ]]; then
    echo "all ${#conformance_images[@]} conformance images are in $out under the names e2e.test uses"
  fi
  return $status
}
if $verify; then
  verify_images
  exit $?
fi

if $stop_registry; then
  stop_the_registry
  exit 0
fi

mkdir -p "$out" _output/bin
skiff="${SKIFF:-}"
if [[ -z "$skiff" ]]; then
  skiff=_output/bin/skiff
  go build -o "$skiff" ./cmd/skiff
fi
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o _output/bin/pause ./cmd/pause
"$skiff" images build --pause-binary _output/bin/pause --output "$out"
# Archive file → image name, for --registry.
declare -A names=(
  [pause.tar]=registry.k8s.io/pause:3.10.2
  [busybox.tar]=registry.k8s.io/e2e-test-images/busybox:1.37.0-2
)

# The conformance images (--all). Build products other than the archives
# live in $out/.build: the rootfs (by package list) and the binaries.
build_conformance_images() {
  local build="$out/.build" tools=hack/tools/images
  mkdir -p "$build/bin"
  build=$(cd "$build" && pwd)

  # The tools the specs exec inside agnhost (upstream: Alpine with
  # bind-tools, curl, netcat-openbsd, iproute2, bash, socat).
  local packages=bash,curl,wget,bind9-dnsutils,netcat-openbsd,iproute2,socat,ca-certificates,procps,iputils-ping
  local suite
  suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  local key rootfs
  key=$(echo "rootfs v1 $suite minbase $packages" | sha256sum | cut -c1-12)
  rootfs="$build/rootfs-$key"
  if [[ ! -d "$rootfs" ]]; then
    if [[ $EUID != 0 ]]; then
      echo "hack/images.sh --all: building the rootfs needs root (mmdebstrap --mode=root)" >&2
      exit 1
    fi
    if ! command -v mmdebstrap >/dev/null; then
      apt-get install -y mmdebstrap || { apt-get update && apt-get install -y mmdebstrap; }
    fi
    local mirror=()
    # The host's apt sources (a file given as the mirror is pasted in).
    if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
      mirror=(/etc/apt/sources.list.d/debian.sources)
    elif [[ -s /etc/apt/sources.list ]]; then
      mirror=(/etc/apt/sources.list)
    fi
    echo "building a Debian $suite rootfs with $packages (cold: ~6 min)"
    local start=$SECONDS
    rm -rf "$rootfs.tmp"
    # The resolv.conf and hostname mmdebstrap copies from the host do not
    # belong in an image: the runtime mounts its own.
    nice -n 15 mmdebstrap --quiet --variant=minbase --mode=root --format=directory \
      --include="$packages" \
      --aptopt='Acquire::Check-Valid-Until "false"' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --customize-hook='rm -f "$1/etc/resolv.conf" "$1/etc/hostname"' \
      "$suite" "$rootfs.tmp" "${mirror[@]}"
    mv "$rootfs.tmp" "$rootfs"
    find "$build" -maxdepth 1 -name 'rootfs-*' ! -name "rootfs-$key" -exec rm -rf {} +
    echo "built $rootfs in $(( SECONDS - start ))s"
  fi

  # Static binaries from the upstream modules; go build relinks only what
  # changed (agnhost cold: ~9 min on 2 cores).
  local bin pkg start
  for bin in agnhost:k8s.io/kubernetes/test/images/agnhost \
             nnp:k8s.io/kubernetes/test/images/nonewprivs \
             sample-apiserver:k8s.io/sample-apiserver \
             etcd:go.etcd.io/etcd/server/v3 \
             conformance-images:./cmd/conformance-images; do
    pkg=${bin#*:} bin=${bin%%:*} start=$SECONDS
    (cd "$tools" && CGO_ENABLED=0 nice -n 15 go build -trimpath -ldflags "-s -w" -o "$build/bin/$bin" "$pkg")
    (( SECONDS - start < 5 )) || echo "built $bin in $(( SECONDS - start ))s"
  done
  local kdir
  kdir=$(cd "$tools" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)

  "$build/bin/conformance-images" --output "$out" --rootfs "$rootfs" --kubernetes-dir "$kdir" \
    --agnhost "$build/bin/agnhost" --nnp "$build/bin/nnp" \
    --sample-apiserver "$build/bin/sample-apiserver" --etcd "$build/bin/etcd"
}
if $all; then
  build_conformance_images
fi

if [[ -n "$import_address" ]]; then
  for f in "$out"/*.tar; do
    "$skiff" images import --container-runtime-endpoint "$import_address" "$f"
  done
fi

if $registry; then
  mkdir -p "$registry_dir/data"
  registry_dir=$(cd "$registry_dir" && pwd)
  if ! curl -fsS "http://$registry_addr/v2/" >/dev/null 2>&1; then
    cat > "$registry_dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $registry_dir/data
  delete:
    enabled: true
http:
  addr: $registry_addr
EOF
    setsid docker-registry serve "$registry_dir/config.yml" >"$registry_dir/registry.log" 2>&1 < /dev/null &
    echo $! > "$registry_dir/registry.pid"
    for _ in $(seq 50); do
      curl -fsS "http://$registry_addr/v2/" >/dev/null 2>&1 && break
      sleep 0.2
    done
    curl -fsS "http://$registry_addr/v2/" >/dev/null || { cat "$registry_dir/registry.log" >&2; exit 1; }
    echo "docker-registry on $registry_addr (pid $(cat "$registry_dir/registry.pid"), log $registry_dir/registry.log; stop: $0 --stop-registry)"
  fi
  for f in "$out"/*.tar; do
    name="${names[$(basename "$f")]:-}"
    # Archives written by pkg/images name their image in index.json.
    [[ -n "$name" ]] || name=$(archive_name "$f")
    if [[ -z "$name" ]]; then
      echo "skipping $f: no image name known for it" >&2
      continue
    fi
    # Keep the upstream repository path so that a mirror of registry.k8s.io
    # finds it; --preserve-digests keeps the archive's manifest digest.
    dest="docker://$registry_addr/${name#registry.k8s.io/}"
    skopeo copy -q --preserve-digests --dest-tls-verify=false "oci-archive:$f" "$dest"
    echo "pushed $name to $dest"
  done
fi
