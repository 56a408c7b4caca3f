# The reward service: verifiers, worker pool, HTTP and gRPC (no trainer, no torch).
#
# Stages: `deps` installs the Python packages pyproject.toml names into a virtual
# environment, `build` installs this project's code beside it, and the final image copies
# both onto the runtime libraries only (no pip cache, no build tools). A code change
# rebuilds the small code layer, never the packages. It runs as an unprivileged user;
# every answer type works inside it (Chromium for html-code, cairo for svg-code,
# bubblewrap for sandboxed code).

FROM python:3.11-slim AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml ./
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && /opt/venv/bin/pip install -q -r /tmp/requirements.txt

FROM deps AS build
COPY README.md ./
COPY reward_server ./reward_server
COPY services ./services
COPY reward_client ./reward_client
# the project alone (its packages and the `reward-server` script), bytecode compiled
RUN /opt/venv/bin/pip install -q --no-deps --target /opt/app . \
 && /opt/venv/bin/python -m compileall -q /opt/app

FROM python:3.11-slim
# chromium: html-code renders; libatomic1: Playwright's bundled driver (node) links it;
# libcairo2: cairosvg; fonts-dejavu-core: text in SVG and HTML renders, the same fonts
# scripts/install_system.sh installs, so renders (and rewards) match the tested ones;
# bubblewrap: code sandboxes.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      chromium libatomic1 libcairo2 fonts-dejavu-core bubblewrap \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin reward
COPY --from=deps /opt/venv /opt/venv
COPY --from=build /opt/app /opt/app
ENV PATH=/opt/app/bin:/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    REWARD_HOST=0.0.0.0 \
    REWARD_PORT=8000 \
    REWARD_GRPC_PORT=50051
USER reward
WORKDIR /home/reward
EXPOSE 8000 50051
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
# SIGTERM: HTTP and gRPC stop accepting, finish in-flight requests, then the process exits
STOPSIGNAL SIGTERM
CMD ["reward-server", "serve"]
