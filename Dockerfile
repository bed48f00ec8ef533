# One image for every part of the relay: the command picks the part (docker-compose.yml and
# deploy/kubernetes run `cmrelay ingest | worker | worker-health | admin | sandbox`).
# tests/deploy/test_image.py stages exactly what this file COPYs, installs it the same way and
# runs every command the compose file runs: keep COPY and RUN lines simple enough for it to read.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cmrelay ./cmrelay
COPY cmrelay_cli ./cmrelay_cli
COPY ingest ./ingest
COPY worker ./worker
COPY sandbox ./sandbox
COPY admin ./admin
COPY config ./config
# The in-tree build leftovers go; a numeric user, so runAsNonRoot can check it by number.
RUN pip install --no-cache-dir . && rm -rf build ./*.egg-info && useradd --system --uid 10001 --no-create-home relay
USER 10001
# ingest, admin, sandbox
EXPOSE 8080 8081 8090
CMD ["cmrelay", "ingest"]
