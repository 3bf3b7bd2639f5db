# Janus, the SFU of Salon's big rooms (docs/SFU.md), for the `janus` service of
# deploy/compose.yaml: Debian's package (the VideoRoom plugin, the WebSocket transport), run
# as a user without privileges, configured only by the folder `salon sfu-config` writes and
# compose mounts at /etc/janus-salon. Build from deploy/:
#
#   docker build -f deploy/janus.Dockerfile -t salon-janus deploy
#
# The base image is a build argument, so a mirror or a locally made base can stand in.
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends janus=1.1.2-* \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin janus
USER 10001:10001
# -F: the mounted folder, whatever folder `salon sfu-config` wrote into on the host.
CMD ["janus", "--disable-colors", "--log-stdout", "-F", "/etc/janus-salon"]
