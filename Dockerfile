# syntax=docker/dockerfile:1
#
# Switchboard images. One binary runs every service (`switchboard <service>`), so there are two
# images, both built from this file:
#
#   docker build -t switchboard .                                  # default target: `switchboard`
#   docker build -t switchboard-sandbox --target switchboard-sandbox .
#
# - `switchboard`: the binary on a distroless base (glibc, CA certificates, no shell, no package
#   manager), uid 65532. For mcp-server, middleware, time-client and code-executor.
# - `switchboard-sandbox`: the binary plus Debian's Python 3.11 (/usr/bin/python3, what the
#   sandbox runs by default) and pip (for guarded package installs), uid 10001.
#
# Both run as non-root and work with a read-only root filesystem: give /tmp a tmpfs, and the
# sandbox a writable volume for its managed site-packages (see deploy/README.md).
#
# The sandbox's isolation (user/pid/mount/net/ipc/uts namespaces, pivot_root, a fresh /proc,
# seccomp, Landlock, cgroups) needs more from the container runtime than Docker's defaults
# allow, but NOT a privileged container and NOT any added capability:
#   --security-opt seccomp=deploy/seccomp/sandbox.json   (allows clone with namespace flags,
#                                                          mount, umount2, pivot_root, sethostname)
#   --security-opt apparmor=unconfined                     (docker-default denies mount)
#   --security-opt systempaths=unconfined                  (masked /proc forbids a new procfs)
# plus, on the host, unprivileged user namespaces enabled. deploy/README.md says why each one
# is needed and what it does and does not open up.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------------------------
# Build: a release binary. Cache mounts keep the registry and target dir between builds.
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml .clippy.toml ./
COPY crates ./crates
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p switchboard \
    && install -D -m 0755 target/release/switchboard /out/switchboard

# ---------------------------------------------------------------------------------------------
# The sandbox image: the binary plus the Python runtime the sandbox isolates.
FROM debian:${DEBIAN_RELEASE}-slim AS switchboard-sandbox
# python3: the interpreter (3.11 in bookworm) at /usr/bin/python3, which the sandbox's minimal
# root (/usr plus the bin/lib/lib64 links) contains. python3-pip: for `install_package`.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-pip \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 switchboard \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
         --shell /usr/sbin/nologin switchboard \
    && install -d -o 10001 -g 10001 -m 0755 /var/lib/switchboard /var/lib/switchboard/packages
# The code interpreter's scientific stack (numpy, pandas, matplotlib and what they pull in), as
# the exact binary wheels the tests pin: downloaded now, installed by the sandbox itself at its
# first start (SANDBOX_PREINSTALL), through its own checks and verified package store, so
# they are in its manifest like any other package. Later starts find them installed.
COPY crates/switchboard-sandbox/tests/fixtures/scientific-requirements.txt /opt/switchboard/scientific-requirements.txt
RUN python3 -m pip download --no-cache-dir --disable-pip-version-check --no-input \
      --only-binary :all: --dest /opt/switchboard/wheels \
      -r /opt/switchboard/scientific-requirements.txt
COPY --from=build /out/switchboard /usr/local/bin/switchboard
ENV SWITCHBOARD_LOG_FORMAT=json \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SANDBOX_WHEEL_DIR=/opt/switchboard/wheels \
    SANDBOX_PREINSTALL=numpy==2.4.6,pandas==3.1.1,matplotlib==3.11.2
USER 10001:10001
EXPOSE 8001
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["sandbox"]

# ---------------------------------------------------------------------------------------------
# The default image: the binary alone. distroless/cc has the glibc and libgcc_s the binary links
# against, CA certificates for HTTPS LLM APIs, and a `nonroot` user (65532).
FROM gcr.io/distroless/cc-debian12:nonroot AS switchboard
COPY --from=build /out/switchboard /usr/local/bin/switchboard
ENV SWITCHBOARD_LOG_FORMAT=json
USER 65532:65532
EXPOSE 8000 8002 8003 8004
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["--help"]
