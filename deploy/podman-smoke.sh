#!/usr/bin/env bash
# Build deploy/Dockerfile with Debian's podman, run the image, and check it serves:
# the health endpoint, the client page and one of its assets, the image's own HEALTHCHECK,
# and that it runs as the non-root user. Then deploy/janus.Dockerfile (compose's janus
# service) on a configuration `salon sfu-config` wrote: its API answers, as user 10001. For machines without a Docker engine or an image
# registry: the two base images are made here with debootstrap and passed through the
# NODE_IMAGE / PYTHON_IMAGE build arguments. Too slow for `make test` (3-7 minutes the first
# time, about 1 minute with the base images and build cache in place). Run as root:
#
#   deploy/podman-smoke.sh
#
# Then deploy/release.sh in compose mode, over SSH to this machine (Debian's sshd on a free
# loopback port, throwaway keys), with podman as the engine: the image, a newer one (the same
# with another label), a broken one (rolled back by release.sh itself), and a rollback by
# hand. podman has no `compose`: a small stand-in (below) does, with podman, the three compose
# commands release.sh uses, for the salon service alone. SKIP_RELEASE=1 skips this part.
#
# Needs: podman, runc, debootstrap, openssh-server (installed with apt when missing), and
# Node 20 on the host (/usr/bin/node and /usr/lib/node_modules/npm are copied into the Node
# base image). Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian),
# KEEP_IMAGE=1 to keep localhost/salon:smoke, REBUILD_BASE=1 to remake the base images.
set -euo pipefail

cd "$(dirname "$0")/.."
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PY_BASE=localhost/salon-base/python:3.11-bookworm
NODE_BASE=localhost/salon-base/node:20-bookworm
IMAGE=localhost/salon:smoke
NAME=salon-smoke-$$
JANUS_IMAGE=localhost/salon-janus:smoke
JANUS_NAME=salon-smoke-janus-$$
RELEASED=salon-smoke-release-$$  # the container the compose stand-in runs
WORK=$(mktemp -d)
SSHD_PID=""
MADE_PRIVSEP=0
LOCK="$HOME/.salon-release.lock" # release.sh's lock on a compose host
[ -e "$LOCK" ] && MADE_LOCK=0 || MADE_LOCK=1

say() { printf '\n== %s\n' "$*"; }

cleanup() {
    # (Without systemd, podman cannot schedule the HEALTHCHECK timer; `podman healthcheck
    # run` below runs it once instead.)
    podman rm -f "$NAME" "$RELEASED" "$JANUS_NAME" >/dev/null 2>&1 || true
    podman rmi -f "$JANUS_IMAGE" >/dev/null 2>&1 || true
    podman volume rm -f "$NAME-data" "$RELEASED-data" >/dev/null 2>&1 || true
    podman rmi -f localhost/salon:current localhost/salon:previous "$IMAGE-newer" \
        "$IMAGE-broken" >/dev/null 2>&1 || true
    [ "${KEEP_IMAGE:-0}" = 1 ] || podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
    if [ -n "$SSHD_PID" ]; then
        kill "$SSHD_PID" 2>/dev/null || true
        wait "$SSHD_PID" 2>/dev/null || true
    fi
    [ "$MADE_PRIVSEP" = 0 ] || rmdir /run/sshd 2>/dev/null || true
    [ "$MADE_LOCK" = 0 ] || rm -f "$LOCK"
    rm -rf "$WORK"
}
trap cleanup EXIT

missing=""
for tool in podman runc debootstrap curl /usr/sbin/sshd; do
    command -v "$tool" >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    say "installing:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        podman runc debootstrap curl uidmap openssh-server
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
podman rm -f "$NAME" >/dev/null

# --- compose's janus service: deploy/janus.Dockerfile on a folder salon sfu-config wrote -------
say "build deploy/janus.Dockerfile"
podman build --network host --format docker -f deploy/janus.Dockerfile \
    --build-arg DEBIAN_IMAGE="$PY_BASE" -t "$JANUS_IMAGE" deploy >"$WORK/janus-build.log" 2>&1 \
    || { tail -40 "$WORK/janus-build.log"; exit 1; }
JANUS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -m 700 "$WORK/janus"
podman run --rm --user 0 -v "$WORK/janus:/out" "$IMAGE" sfu-config /out \
    --api-ip 127.0.0.1 --port "$JANUS_PORT" --rtp-ports 45000-45100 >"$WORK/janus.env" \
    2> >(grep -v 'systemd connection' >&2)
chown -R 10001:10001 "$WORK/janus"  # as docs/SFU.md says
podman run -d --name "$JANUS_NAME" --network host --read-only --cap-drop ALL \
    --security-opt no-new-privileges -v "$WORK/janus:/etc/janus-salon:ro" "$JANUS_IMAGE" \
    >/dev/null 2> >(grep -v 'systemd connection' >&2)
janus_fail() { echo "FAIL: $*"; podman logs "$JANUS_NAME" 2>&1 | tail -20; exit 1; }
URL=$(sed -n 's/^SALON_SFU_URL=//p' "$WORK/janus.env")
ANSWER=""
for _ in $(seq 1 100); do
    ANSWER=$(podman run --rm --network host --entrypoint python3 "$IMAGE" -c \
        "from salon.server.janus import answers; print(answers('$URL') or '')" 2>/dev/null)
    [ -n "$ANSWER" ] && break
    podman container exists "$JANUS_NAME" && [ "$(podman inspect -f '{{.State.Running}}' "$JANUS_NAME")" = true ] \
        || janus_fail "Janus exited"
    sleep 0.2
done
[ -n "$ANSWER" ] || janus_fail "Janus's API at $URL does not answer"
echo "Janus answers at $URL as $ANSWER"
[ "$(podman exec "$JANUS_NAME" id -u)" = 10001 ] || janus_fail "Janus does not run as 10001"
podman rm -f "$JANUS_NAME" >/dev/null
if [ "${SKIP_RELEASE:-0}" = 1 ]; then
    say "podman smoke test passed (release.sh skipped)"
    exit 0
fi

# --- deploy/release.sh in compose mode, over SSH to this machine, podman as the engine ---------
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
SSH_PORT=$(free_port)
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
KEYS="$WORK/ssh"

say "sshd on 127.0.0.1:$SSH_PORT, throwaway host and user keys"
mkdir -m 700 "$KEYS"
ssh-keygen -q -t ed25519 -N '' -f "$KEYS/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$KEYS/user_key"
cp "$KEYS/user_key.pub" "$KEYS/authorized_keys"
printf '[127.0.0.1]:%s %s\n' "$SSH_PORT" "$(cut -d' ' -f1,2 "$KEYS/host_key.pub")" \
    >"$KEYS/known_hosts"
# Sessions get this script's containers.conf (runc, no default ulimits) for podman, as a
# host's own configuration would give it.
cat >"$KEYS/sshd_config" <<CONFIG
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $KEYS/host_key
PidFile $KEYS/sshd.pid
AuthorizedKeysFile $KEYS/authorized_keys
AllowUsers $(id -un)
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SetEnv CONTAINERS_CONF=$CONTAINERS_CONF
CONFIG
cat >"$KEYS/ssh_config" <<CONFIG
Host smoke-host
    HostName 127.0.0.1
    Port $SSH_PORT
    User $(id -un)
    IdentityFile $KEYS/user_key
    IdentitiesOnly yes
    IdentityAgent none
    UserKnownHostsFile $KEYS/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
CONFIG
if [ ! -d /run/sshd ]; then  # sshd's privilege-separation folder, made only when missing
    mkdir -m 0755 /run/sshd
    MADE_PRIVSEP=1
fi
/usr/sbin/sshd -D -e -f "$KEYS/sshd_config" 2>"$KEYS/sshd.log" &
SSHD_PID=$!
for _ in $(seq 1 100); do
    ssh -F "$KEYS/ssh_config" smoke-host true 2>/dev/null && break
    sleep 0.1
done

# What release.sh runs as `docker compose -f deploy/compose.yaml ...`, done with podman for
# the salon service alone: `up -d --no-build --no-deps salon` (recreate the container when
# salon:current is another image, stopping the old one with the compose file's
# stop_grace_period, so that it drains), `ps -q salon` and `exec -T salon COMMAND...`. Host
# networking instead of the compose network: podman's bridge needs iptables, absent here.
cat >"$WORK/compose" <<STANDIN
#!/usr/bin/env bash
set -euo pipefail
name=$RELEASED
case "\$1" in
    up)
        want=\$(podman image inspect -f '{{.Id}}' "\$SALON_IMAGE")
        have=\$(podman inspect -f '{{.Image}}' "\$name" 2>/dev/null || true)
        [ "\$want" != "\$have" ] || exit 0
        podman stop -t 35 "\$name" >/dev/null 2>&1 || true
        podman rm -f "\$name" >/dev/null 2>&1 || true
        podman run -d --name "\$name" --network host -e SALON_HOST=127.0.0.1 \\
            -e SALON_PORT=$PORT -v "\$name-data:/data" "\$SALON_IMAGE" >/dev/null
        ;;
    ps) podman ps -q --filter "name=^\$name\\\$" ;;
    exec)
        shift 3 # exec -T salon
        exec podman exec "\$name" "\$@"
        ;;
    *)
        echo "compose stand-in: '\$*' is not a command release.sh uses" >&2
        exit 2
        ;;
esac
STANDIN
chmod +x "$WORK/compose"

say "a newer image (the same, another label) and a broken one (its entry point fails)"
printf 'FROM %s\nLABEL org.opencontainers.image.revision=smoke-newer\n' "$IMAGE" \
    | podman build -q --network host -t "$IMAGE-newer" -f - "$WORK" >/dev/null
printf 'FROM %s\nENTRYPOINT ["/bin/false"]\n' "$IMAGE" \
    | podman build -q --network host -t "$IMAGE-broken" -f - "$WORK" >/dev/null

NAME=$RELEASED # for fail's logs from here on
release() {
    deploy/release.sh compose --host smoke-host --ssh-config "$KEYS/ssh_config" \
        --dir "$PWD" --compose "$WORK/compose" --engine podman --timeout 60 "$@"
}
image_id() { podman image inspect -f '{{.Id}}' "$1"; }
runs() { [ "$(podman inspect -f '{{.Image}}' "$RELEASED")" = "$(image_id "$1")" ]; }
healthy() {
    curl -fsS "$BASE/api/v1/health" | grep -q '"status":"ok"' || fail "$BASE is not healthy"
}

say "release 1: $IMAGE, streamed over SSH"
release --image "$IMAGE" --load || fail "release 1 failed"
runs "$IMAGE" || fail "release 1 is not what runs"
healthy

say "release 2: $IMAGE-newer; the server before drains, release 1 is kept"
release --image "$IMAGE-newer" --load || fail "release 2 failed"
runs "$IMAGE-newer" || fail "release 2 is not what runs"
[ "$(image_id salon:previous)" = "$(image_id "$IMAGE")" ] || fail "release 1 is not kept"
healthy

say "release 3: $IMAGE-broken, which release.sh must roll back by itself"
status=0
release --image "$IMAGE-broken" --load --timeout 20 || status=$?
[ "$status" = 3 ] || fail "the broken release ended with status $status, not 3 (rolled back)"
runs "$IMAGE-newer" || fail "release 2 does not run again"
healthy

say "rollback by hand: back to release 1"
release --rollback || fail "the rollback by hand failed"
runs "$IMAGE" || fail "release 1 does not run again"
healthy
say "podman smoke test passed; release.sh compose mode deployed and rolled back"
