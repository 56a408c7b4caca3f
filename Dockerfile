# The reward service: verifiers, worker pool, HTTP and gRPC (no trainer, no torch).
FROM python:3.11-slim

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      chromium bubblewrap fonts-dejavu-core libcairo2 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY reward_server ./reward_server
COPY services ./services
COPY reward_client ./reward_client
RUN pip install --no-cache-dir .

ENV REWARD_HOST=0.0.0.0 REWARD_PORT=8000 REWARD_GRPC_PORT=50051
EXPOSE 8000 50051
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["reward-server", "serve"]
