# One image for every part of the relay: the command picks the part.
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
RUN pip install --no-cache-dir . && useradd --system relay
USER relay
EXPOSE 8080
CMD ["cmrelay", "ingest"]
