# STAND-IN for the official python:<version>-slim-bookworm image: a TEST FIXTURE, built offline from Debian's
# packages by scripts/docker-standins.sh only when the official image cannot be pulled (no registry). Never run
# it as the product: the README builds on the official image.
# How it differs from the official image:
#   - Python is Debian 12's python3 (3.11.2, with Debian's patches), not python.org's build in /usr/local;
#     /usr/local/bin/python, python3 and pip link to it, and new venvs get Debian's pip (23.0.1).
#   - Larger: Debian's python3-venv and python3-pip with their dependencies.
#   - It trusts the build host's extra CA certificates (copied from /usr/local/share/ca-certificates), so pip
#     works behind a TLS-inspecting proxy.
# The same as the official image: Debian 12 (bookworm) slim, user root, LANG=C.UTF-8, ca-certificates, netbase,
# tzdata, CMD python3.
FROM debian:bookworm-slim

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV LANG=C.UTF-8

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-pip ca-certificates netbase tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && rm -f /usr/lib/python3*/EXTERNALLY-MANAGED \
    && ln -s /usr/bin/python3 /usr/local/bin/python \
    && ln -s /usr/bin/python3 /usr/local/bin/python3 \
    && ln -s /usr/bin/pip3 /usr/local/bin/pip

COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates

CMD ["python3"]
