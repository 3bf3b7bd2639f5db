#!/usr/bin/env bash
# Build deploy/Dockerfile with Debian's podman, run the image, and check it serves:
# the health endpoint, the client page and one of its assets, the image's own HEALTHCHECK,
# and that it runs as the non-root user. For machines without a Docker engine or an image
# registry: the two base images are made here with debootstrap and passed through the
# NODE_IMAGE / PYTHON_IMAGE build arguments. Too slow for `make test` (3-7 minutes the first
# time, about 1 minute with the base images and build cache in place). Run as root:
#
#   deploy/podman-smoke.sh
#
# Needs: podman, runc, debootstrap (installed with apt when missing), and Node 20 on the
# host (/usr/bin/node and /usr/lib/node_modules/npm are copied into the Node base image).
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), KEEP_IMAGE=1 to keep
# localhost/salon:smoke, REBUILD_BASE=1 to remake the base images.
set -euo pipefail

cd "$(dirname "$0")/.."
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PY_BASE=localhost/salon-base/python:3.11-bookworm
NODE_BASE=localhost/salon-base/node:20-bookworm
IMAGE=localhost/salon:smoke
NAME=salon-smoke-$$
WORK=$(mktemp -d)

say() { printf '\n== %s\n' "$*"; }

cleanup() {
    # (Without systemd, podman cannot schedule the HEALTHCHECK timer; `podman healthcheck
    # run` below runs it once instead.)
    podman rm -f "$NAME" >/dev/null 2>&1 || true
    podman volume rm -f "$NAME-data" >/dev/null 2>&1 || true
    [ "${KEEP_IMAGE:-0}" = 1 ] || podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

missing=""
for tool in podman runc debootstrap curl; do
    command -v "$tool" >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    say "installing:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        podman runc debootstrap curl uidmap
fi

# crun (podman's default runtime) and podman's default ulimits both fail in this kind of
# sandbox; runc with no default ulimits works. Container networking needs iptables, which
# is not here: builds and runs use the host's network.
cat >"$WORK/containers.conf" <<'EOF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$WORK/containers.conf"

# The host's extra certificate authorities (a TLS-inspecting egress proxy) go into the base
# images, so npm, pip and uv inside the build trust what the host trusts.
BASE_ENV=(
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt'
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt'
    --change 'ENV UV_NATIVE_TLS=1'
)

if [ "${REBUILD_BASE:-0}" = 1 ] || ! podman image exists "$PY_BASE" \
    || ! podman image exists "$NODE_BASE"; then
    say "base images: debootstrap bookworm (python3, venv) from $MIRROR"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log"; exit 1; }
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$WORK/rootfs/usr/local/share/ca-certificates/"
        chroot "$WORK/rootfs" update-ca-certificates >/dev/null
    fi
    rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
    tar -C "$WORK/rootfs" -c . | podman import -q "${BASE_ENV[@]}" --change 'CMD ["python3"]' \
        - "$PY_BASE" >/dev/null
    say "Node base image: the same root plus the host's Node $(node --version)"
    tar -C "$WORK/rootfs" -cf "$WORK/node.tar" .
    tar -C / -rf "$WORK/node.tar" usr/bin/node usr/bin/npm usr/bin/npx usr/lib/node_modules/npm
    podman import -q "${BASE_ENV[@]}" --change 'CMD ["node"]' "$WORK/node.tar" "$NODE_BASE" >/dev/null
    rm -rf "$WORK/rootfs" "$WORK/node.tar"
fi

say "build deploy/Dockerfile"
podman build --network host --format docker -f deploy/Dockerfile \
    --build-arg NODE_IMAGE="$NODE_BASE" --build-arg PYTHON_IMAGE="$PY_BASE" \
    -t "$IMAGE" . >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
say "run $IMAGE on 127.0.0.1:$PORT"
podman run -d --name "$NAME" --network host -e SALON_PORT="$PORT" -e SALON_HOST=127.0.0.1 \
    -v "$NAME-data:/data" "$IMAGE" >/dev/null 2> >(grep -v 'systemd connection' >&2)
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
    curl -fsS "$BASE/api/v1/health" >/dev/null 2>&1 && break
    sleep 0.2
done

fail() { echo "FAIL: $*"; podman logs "$NAME" 2>&1 | tail -20; exit 1; }

health=$(curl -fsS "$BASE/api/v1/health") || fail "no answer from $BASE/api/v1/health"
echo "health: $health"
grep -q '"status":"ok"' <<<"$health" || fail "health is not ok"

page=$(curl -fsS "$BASE/") || fail "no client page"
grep -q '<div id="root"' <<<"$page" || fail "the client page is not the built client"
asset=$(grep -o '/assets/[^"]*\.js' <<<"$page" | head -1)
[ -n "$asset" ] || fail "the client page names no script"
type=$(curl -fsS -o /dev/null -w '%{content_type}' "$BASE$asset") || fail "no $asset"
echo "client: / and $asset ($type)"

user=$(podman exec "$NAME" id -u)
[ "$user" != 0 ] || fail "the container runs as root"
echo "runs as uid $user"
podman exec "$NAME" test -f /data/salon.db || fail "no database in the /data volume"

podman healthcheck run "$NAME" 2>/dev/null || fail "the image's HEALTHCHECK says unhealthy"
echo "HEALTHCHECK: healthy"
say "podman smoke test passed"
