# claudewrap's Prometheus exporter, `claudewrap serve`, in a container: the
# claude-token-collector of examples/kubernetes/, or one machine's exporter.
#
#   docker build -t claudewrap .
#   docker run -d --name claude-token-collector --read-only \
#     --user "$(id -u):$(id -g)" \
#     -v ~/.local/share/claudewrap:/journal:ro \
#     --tmpfs /var/lib/claudewrap:uid=$(id -u),gid=$(id -g),mode=0700 \
#     -p 127.0.0.1:9404:9404 claudewrap
#   curl -s http://127.0.0.1:9404/metrics
#
# The journal is mounted read-only: the exporter only reads it. Its state cache
# and exported counters go to $CLAUDEWRAP_STATE_DIR (a tmpfs or volume of its
# own), so a restart neither re-reads a big journal from the start nor needs to
# write beside it. The journal is private (0600 in a 0700 folder): run the
# container as the journal's owner (--user above), or let the writers run as
# uid 10001, the image's user. tests/test_deploy.py runs this command line.

FROM python:3.12-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md /src/
COPY claudewrap /src/claudewrap
COPY shell /src/shell
RUN python -m venv /opt/claudewrap && /opt/claudewrap/bin/pip install /src

FROM python:3.12-slim-bookworm
COPY --from=build /opt/claudewrap /opt/claudewrap
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/claudewrap \
        --no-create-home --shell /usr/sbin/nologin claudewrap \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/claudewrap \
    && install -d -m 0755 /journal
ENV PATH=/opt/claudewrap/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/claudewrap \
    CLAUDEWRAP_JOURNAL=/journal/journal.jsonl \
    CLAUDEWRAP_STATE_DIR=/var/lib/claudewrap
USER 10001:10001
# /journal: the journal's folder, mounted read-only. /var/lib/claudewrap: the
# exporter's own state (anything writable; a tmpfs is enough).
VOLUME ["/journal", "/var/lib/claudewrap"]
EXPOSE 9404
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9404/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["claudewrap"]
# 0.0.0.0 because this is a container: the port is reachable only where it is
# published (-p) or through a Service. Outside a container serve's default stays
# 127.0.0.1.
CMD ["serve", "--host", "0.0.0.0", "--port", "9404"]
