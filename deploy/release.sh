#!/usr/bin/env bash
# Update one Salon host over SSH, keep the previous release, and roll back by itself when the
# new one is not ready in time. Two modes (docs/DEPLOY.md, "Continuous delivery"):
#
#   venv     upload a wheel (it carries the built client) and the locked requirements, install
#            them into a new folder under <root>/releases with uv, point <root>/current at it,
#            restart the service (the old server drains on SIGTERM; members resume on the new
#            one), wait for /api/v1/ready to answer with the new version.
#   compose  pull (or load) an image, tag it salon:current (the one before becomes
#            salon:previous), `docker compose up -d` the salon service, wait until the
#            container runs that image and answers /api/v1/ready.
#
#   deploy/release.sh venv    --host deploy@meet.example.org [--wheel dist/salon-X.whl]
#   deploy/release.sh compose --host deploy@meet.example.org --image ghcr.io/acme/salon:1.2.0
#   deploy/release.sh venv|compose --host ... --rollback     # back to the previous release
#
# Exit status: 0 deployed (or rolled back on request); 1 failed before anything changed on
# the host; 3 the new release was not ready and the previous one serves again; 4 the rollback
# failed too: the host needs a person.
# The host_* functions run on the host, where on_host sends them (declare -f):
# shellcheck disable=SC2329
set -euo pipefail

usage() {
    cat <<'EOF'
usage: deploy/release.sh venv|compose --host [USER@]HOST [options]

common options
  --host [USER@]HOST     the host to update (a name from --ssh-config works too)
  --port N               SSH port
  --ssh-config FILE      ssh -F FILE (then nothing from ~/.ssh/config is read)
  --ssh-option OPT       ssh -o OPT, repeatable (IdentityFile=..., UserKnownHostsFile=...)
  --timeout SECONDS      how long the new release has to become ready (default 60; the
                         release before gets at least 60 when it is rolled back to)
  --rollback             go back to the previous release instead of deploying

venv mode
  --wheel FILE           the wheel to deploy (default: build one from this checkout with
                         `make web` and `uv build`; the wheel carries the built client)
  --requirements FILE    locked requirements with hashes (default: `uv export` of uv.lock)
  --root DIR             the host's Salon folder (default /srv/salon): releases/, current,
                         previous; the data folder must live outside releases/
  --url URL              readiness URL on the host (default http://127.0.0.1:8080/api/v1/ready)
  --restart COMMAND      restarts the service on the host (default
                         'sudo systemctl restart salon.service')
  --uv PATH              uv on the host (default /opt/uv/bin/uv)
  --python PATH          the host's Python 3.11+ for the release's venv (default python3)
  --keep N               releases kept on the host besides current and previous (default 5)

compose mode
  --image REF            the image to deploy (pulled on the host unless --load)
  --load                 stream the image from this machine (engine save | ssh | engine load)
                         instead of pulling it on the host
  --dir DIR              the host's checkout with deploy/compose.yaml (default /srv/salon)
  --compose COMMAND      (default 'docker compose -f deploy/compose.yaml'), run in --dir
  --engine COMMAND       docker, or a compatible CLI such as podman (default docker)
EOF
}

# --- Run on the host ----------------------------------------------------------------------
# The functions named host_* (and the two below) are sent to the host with `declare -f` and
# run there by `bash -s`: they need bash, coreutils and flock; venv mode needs uv and
# Python 3.11+, compose mode the container engine and compose.

host_say() { printf '[%s %s] %s\n' "${HOSTNAME:-host}" "$(date -u +%H:%M:%S)" "$*" >&2; }

host_lock() {  # host_lock FILE: one release at a time on a host
    exec 9>"$1"
    flock -n 9 || { host_say "another release is under way on this host"; return 1; }
}
# Commands that may leave a process behind (a restart, a container) get `9>&-`: a server that
# inherited the lock's descriptor would hold the lock for as long as it runs.

# Python that polls a readiness URL until it answers 200 with the expected version (any, when
# empty). An empty URL is this machine's Salon as its SALON_HTTP and SALON_PORT say (inside a
# container). Arguments: URL VERSION SECONDS.
host_probe_code() {
    cat <<'PYTHON'
import json, os, ssl, sys, time, urllib.error, urllib.request
url, want, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
if not url:
    http = os.environ.get("SALON_HTTP", "false").lower() in ("1", "true", "yes", "on")
    port = os.environ.get("SALON_PORT", "8080" if http else "8443")
    url = f"{'http' if http else 'https'}://127.0.0.1:{port}/api/v1/ready"
loopback = ssl._create_unverified_context()  # this machine, maybe a self-signed certificate
deadline, last = time.monotonic() + limit, "no answer"
while True:
    try:
        with urllib.request.urlopen(url, timeout=3, context=loopback) as answer:
            version = json.load(answer).get("version")
        if not want or version == want:
            print(f"ready: {url} answers version {version}")
            sys.exit(0)
        last = f"version {version}, not {want}"
    except urllib.error.HTTPError as error:
        last = f"HTTP {error.code}"
    except (OSError, ValueError) as error:
        last = str(error)
    if time.monotonic() >= deadline:
        print(f"not ready after {limit:g} s: {last}", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.3)
PYTHON
}

host_switch() {  # host_switch ROOT TARGET: point ROOT/current at TARGET, atomically
    ln -sfn "$2" "$1/current.new"
    mv -T "$1/current.new" "$1/current"
}

host_venv_start() {  # host_venv_start ROOT RESTART URL TIMEOUT: restart, wait for current's version
    local root=$1 restart=$2 url=$3 timeout=$4 release version
    release=$(readlink "$root/current")
    version=$(cat "$root/$release/VERSION")
    host_say "restarting the service on $release ($version)"
    if ! sh -c "$restart" </dev/null 9>&-; then
        host_say "the restart command failed: $restart"
        return 1
    fi
    "$root/$release/venv/bin/python" -c "$(host_probe_code)" "$url" "$version" "$timeout" >&2
}

host_venv_deploy() {
    local root=$1 id=$2 restart=$3 url=$4 timeout=$5 uv=$6 python=$7 keep=$8
    local release="releases/$id" old=""
    host_lock "$root/.release.lock" || {
        rm -rf "${root:?}/$release"
        return 1
    }
    [ -L "$root/current" ] && old=$(readlink "$root/current")
    host_say "installing $id into $root/$release"
    # Bytecode now: the service cannot write into its release (ProtectSystem=strict), and a
    # start that compiles everything is a longer gap for the members who wait to resume.
    if ! { UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --python "$python" "$root/$release/venv" \
        && "$uv" pip install --quiet --compile-bytecode --python "$root/$release/venv/bin/python" \
            --require-hashes -r "$root/$release/requirements.txt" \
        && "$uv" pip install --quiet --compile-bytecode --python "$root/$release/venv/bin/python" \
            --no-deps "$root/$release"/salon-*.whl \
        && "$uv" pip check --quiet --python "$root/$release/venv/bin/python" \
        && "$root/$release/venv/bin/salon" --help >/dev/null; } </dev/null; then
        rm -rf "${root:?}/$release"
        host_say "the release did not install; nothing was changed"
        return 1
    fi
    host_switch "$root" "$release"
    if host_venv_start "$root" "$restart" "$url" "$timeout"; then
        if [ -n "$old" ] && [ "$old" != "$release" ]; then
            ln -sfn "$old" "$root/previous.new" && mv -T "$root/previous.new" "$root/previous"
        fi
        host_venv_prune "$root" "$keep"
        host_say "deployed $id"
        return 0
    fi
    touch "$root/$release/FAILED"
    if [ -z "$old" ]; then
        host_say "the first release is not ready, and there is none to go back to"
        return 4
    fi
    host_say "not ready: rolling back to $old"
    host_switch "$root" "$old"
    if host_venv_start "$root" "$restart" "$url" "$((timeout > 60 ? timeout : 60))"; then
        host_say "rolled back: $old serves again; $release is kept (FAILED) to look at"
        return 3
    fi
    host_say "the rollback to $old is not ready either"
    return 4
}

host_venv_rollback() {
    local root=$1 restart=$2 url=$3 timeout=$4 current previous
    host_lock "$root/.release.lock" || return 1
    current=$(readlink "$root/current" || true)
    previous=$(readlink "$root/previous" || true)
    if [ -z "$previous" ] || [ ! -d "$root/$previous" ]; then
        host_say "no previous release to go back to"
        return 1
    fi
    host_say "rolling back from ${current:-nothing} to $previous"
    host_switch "$root" "$previous"
    if [ -n "$current" ]; then
        ln -sfn "$current" "$root/previous.new" && mv -T "$root/previous.new" "$root/previous"
    fi
    host_venv_start "$root" "$restart" "$url" "$timeout" || return 4
}

host_venv_prune() {  # keep the newest KEEP releases, and current and previous whatever their age
    local root=$1 keep=$2 current previous old
    current=$(readlink "$root/current" || true)
    previous=$(readlink "$root/previous" || true)
    find "$root/releases" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -r \
        | tail -n +"$((keep + 1))" | while read -r old; do
        if [ "releases/$old" = "$current" ] || [ "releases/$old" = "$previous" ]; then
            continue
        fi
        host_say "removing the old release $old"
        rm -rf "${root:?}/releases/$old"
    done
}

host_compose_ready() {  # host_compose_ready ENGINE COMPOSE IMAGE_ID TIMEOUT
    local -a engine compose
    read -ra engine <<<"$1"
    read -ra compose <<<"$2"
    local want=$3 timeout=$4 container running deadline
    deadline=$(($(date +%s) + timeout))
    while :; do
        container=$("${compose[@]}" ps -q salon </dev/null 2>/dev/null 9>&- | head -1 || true)
        running=""
        [ -n "$container" ] \
            && running=$("${engine[@]}" inspect -f '{{.Image}}' "$container" 2>/dev/null || true)
        if [ "${running#sha256:}" = "${want#sha256:}" ] \
            && "${compose[@]}" exec -T salon python -c "$(host_probe_code)" \
                "" "" 0 </dev/null >&2 2>/dev/null 9>&-; then
            return 0
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            host_say "not ready after $timeout s:" \
                "container ${container:-none} runs image ${running:-nothing}"
            return 1
        fi
        sleep 1
    done
}

host_compose_up() {  # host_compose_up ENGINE COMPOSE TIMEOUT: run salon:current, wait for it
    local -a engine compose
    read -ra engine <<<"$1"
    read -ra compose <<<"$2"
    local timeout=$3 want
    want=$("${engine[@]}" image inspect -f '{{.Id}}' salon:current)
    host_say "starting salon:current (${want:0:19})"
    SALON_IMAGE=salon:current "${compose[@]}" up -d --no-build --no-deps salon </dev/null 9>&- \
        && host_compose_ready "$1" "$2" "$want" "$timeout"
}

host_compose_deploy() {
    local dir=$1 image=$2 pull=$3 engine_cmd=$4 compose_cmd=$5 timeout=$6
    local -a engine
    read -ra engine <<<"$engine_cmd"
    cd "$dir" || return 1
    host_lock "$HOME/.salon-release.lock" || return 1 # outside the checkout
    if [ "$pull" = 1 ]; then
        host_say "pulling $image"
        "${engine[@]}" pull "$image" </dev/null >&2 9>&- || return 1
    fi
    local new old=""
    new=$("${engine[@]}" image inspect -f '{{.Id}}' "$image") || return 1
    old=$("${engine[@]}" image inspect -f '{{.Id}}' salon:current 2>/dev/null || true)
    "${engine[@]}" tag "$new" salon:current
    if host_compose_up "$engine_cmd" "$compose_cmd" "$timeout"; then
        if [ -n "$old" ] && [ "$old" != "$new" ]; then
            "${engine[@]}" tag "$old" salon:previous
        fi
        host_say "deployed $image"
        return 0
    fi
    if [ -z "$old" ] || [ "$old" = "$new" ]; then
        host_say "the first release is not ready, and there is none to go back to"
        return 4
    fi
    host_say "not ready: rolling back to ${old:0:19}"
    "${engine[@]}" tag "$old" salon:current
    if host_compose_up "$engine_cmd" "$compose_cmd" "$((timeout > 60 ? timeout : 60))"; then
        host_say "rolled back: the image before serves again"
        return 3
    fi
    host_say "the rollback is not ready either"
    return 4
}

host_compose_rollback() {
    local dir=$1 engine_cmd=$2 compose_cmd=$3 timeout=$4 current previous
    local -a engine
    read -ra engine <<<"$engine_cmd"
    cd "$dir" || return 1
    host_lock "$HOME/.salon-release.lock" || return 1 # outside the checkout
    previous=$("${engine[@]}" image inspect -f '{{.Id}}' salon:previous 2>/dev/null) || {
        host_say "no salon:previous image to go back to"
        return 1
    }
    current=$("${engine[@]}" image inspect -f '{{.Id}}' salon:current)
    "${engine[@]}" tag "$previous" salon:current
    "${engine[@]}" tag "$current" salon:previous
    host_compose_up "$engine_cmd" "$compose_cmd" "$timeout" || return 4
}

# --- Run here -----------------------------------------------------------------------------

say() { printf '== %s\n' "$*" >&2; }
die() {
    printf 'release.sh: %s\n' "$*" >&2
    exit 1
}

REPO=$(cd "$(dirname "$0")/.." && pwd)
UV_LOCAL=${UV:-$(command -v uv || echo "$HOME/.local/bin/uv")}

# Run one host_* function on the host with the given arguments.
on_host() {
    {
        printf 'set -uo pipefail\n'
        declare -f host_say host_probe_code host_lock host_switch host_venv_start host_venv_deploy \
            host_venv_rollback host_venv_prune host_compose_ready host_compose_up \
            host_compose_deploy host_compose_rollback
        printf '%q ' "$@"
        printf '\n'
    } | "${SSH[@]}" "$HOST" bash -s
}

# Words for a command line that the host's login shell (sh, bash, ...) reads: only words that
# need no quoting in any of them get through.
remote_quote() {
    local word
    for word in "$@"; do
        [[ $word =~ ^[A-Za-z0-9_./:=@+-]+$ ]] || die "unsafe character in '$word'"
        printf '%s ' "$word"
    done
}

venv_release() {
    local work=$WORK wheel version id status=0
    if [ -z "$WHEEL" ]; then
        say "building the client and the wheel from $REPO"
        make -C "$REPO" --no-print-directory web >&2
        (cd "$REPO" && "$UV_LOCAL" build --wheel --quiet --out-dir "$work/dist") >&2
        WHEEL=$(find "$work/dist" -name 'salon-*.whl' | head -1)
    fi
    [ -f "$WHEEL" ] || die "no wheel: $WHEEL"
    wheel=$(basename "$WHEEL")
    [[ $wheel =~ ^salon-([^-]+)-py3-none-any\.whl$ ]] || die "not a salon wheel: $wheel"
    version=${BASH_REMATCH[1]}
    mkdir "$work/release"
    cp "$WHEEL" "$work/release/"
    if [ -n "$REQUIREMENTS" ]; then
        cp "$REQUIREMENTS" "$work/release/requirements.txt"
    else
        (cd "$REPO" && "$UV_LOCAL" export --frozen --no-dev --extra postgres --extra client --no-emit-project \
            --no-header --quiet -o "$work/release/requirements.txt")
    fi
    printf '%s\n' "$version" >"$work/release/VERSION"
    {
        printf 'version=%s\nwheel=%s\ndeployed=%s\nby=%s\n' "$version" "$wheel" \
            "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${USER:-$(id -un)}@$(hostname)"
        git -C "$REPO" rev-parse HEAD 2>/dev/null | sed 's/^/commit=/' || true
    } >"$work/release/RELEASE"
    id="$(date -u +%Y%m%dT%H%M%SZ)-${version//[^A-Za-z0-9._+-]/_}"
    say "uploading $wheel to $HOST:$ROOT/releases/$id"
    local unpack  # mkdir without -p: a release folder is never reused
    unpack="$(remote_quote mkdir -p -- "$ROOT/releases")"
    unpack+=" && $(remote_quote mkdir -- "$ROOT/releases/$id")"
    unpack+=" && $(remote_quote tar -C "$ROOT/releases/$id" -xf -)"
    tar -C "$work/release" -cf - . | "${SSH[@]}" "$HOST" "$unpack" \
        || die "the upload to $HOST failed"
    on_host host_venv_deploy "$ROOT" "$id" "$RESTART" "$URL" "$TIMEOUT" "$UV_REMOTE" "$PYTHON" \
        "$KEEP" || status=$?
    return "$status"
}

compose_release() {
    local pull=1 status=0
    [ -n "$IMAGE" ] || die "compose mode needs --image"
    if [ "$LOAD" = 1 ]; then
        say "streaming $IMAGE to $HOST"
        local -a engine
        read -ra engine <<<"$ENGINE"
        "${engine[@]}" save "$IMAGE" | gzip -1 \
            | "${SSH[@]}" "$HOST" "gzip -d | $(remote_quote "${engine[@]}") load" >&2 \
            || die "the image did not load on $HOST"
        pull=0
    fi
    on_host host_compose_deploy "$DIR" "$IMAGE" "$pull" "$ENGINE" "$COMPOSE" "$TIMEOUT" \
        || status=$?
    return "$status"
}

main() {
    [ $# -ge 1 ] || {
        usage >&2
        exit 1
    }
    MODE=$1
    shift
    case $MODE in
        venv | compose) ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) die "the mode is venv or compose, not '$MODE'" ;;
    esac
    HOST="" SSH=(ssh -o BatchMode=yes -o ConnectTimeout=20) TIMEOUT=60 ROLLBACK=0
    WHEEL="" REQUIREMENTS="" ROOT=/srv/salon URL=http://127.0.0.1:8080/api/v1/ready
    RESTART="sudo systemctl restart salon.service" UV_REMOTE=/opt/uv/bin/uv PYTHON=python3 KEEP=5
    IMAGE="" LOAD=0 DIR=/srv/salon COMPOSE="docker compose -f deploy/compose.yaml" ENGINE=docker
    while [ $# -gt 0 ]; do
        case $1 in
            --load) LOAD=1 ;;
            --rollback) ROLLBACK=1 ;;
            -h | --help)
                usage
                exit 0
                ;;
            --*)
                [ $# -ge 2 ] || die "$1 needs a value"
                case $1 in
                    --host) HOST=$2 ;;
                    --port) SSH+=(-p "$2") ;;
                    --ssh-config) SSH+=(-F "$2") ;;
                    --ssh-option) SSH+=(-o "$2") ;;
                    --timeout) TIMEOUT=$2 ;;
                    --wheel) WHEEL=$2 ;;
                    --requirements) REQUIREMENTS=$2 ;;
                    --root) ROOT=$2 ;;
                    --url) URL=$2 ;;
                    --restart) RESTART=$2 ;;
                    --uv) UV_REMOTE=$2 ;;
                    --python) PYTHON=$2 ;;
                    --keep) KEEP=$2 ;;
                    --image) IMAGE=$2 ;;
                    --dir) DIR=$2 ;;
                    --compose) COMPOSE=$2 ;;
                    --engine) ENGINE=$2 ;;
                    *) die "unknown option $1 (see --help)" ;;
                esac
                shift
                ;;
            *) die "unexpected argument '$1' (see --help)" ;;
        esac
        shift
    done
    [ -n "$HOST" ] || die "--host is required"
    [[ $TIMEOUT =~ ^[0-9]+$ && $KEEP =~ ^[0-9]+$ ]] || die "--timeout and --keep are whole numbers"
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT

    local status=0
    case $MODE/$ROLLBACK in
        venv/0) venv_release || status=$? ;;
        venv/1) on_host host_venv_rollback "$ROOT" "$RESTART" "$URL" "$TIMEOUT" || status=$? ;;
        compose/0) compose_release || status=$? ;;
        compose/1)
            on_host host_compose_rollback "$DIR" "$ENGINE" "$COMPOSE" "$TIMEOUT" || status=$?
            ;;
    esac
    case $status in
        0) say "done: $HOST serves the release" ;;
        3) say "FAILED: the new release was not ready; $HOST was rolled back" ;;
        4) say "FAILED: $HOST is not ready and could not be rolled back: look at it now" ;;
        1) say "FAILED: nothing was switched on $HOST" ;;
        *) say "FAILED (status $status): see the messages above" ;;
    esac
    exit "$status"
}

main "$@"
