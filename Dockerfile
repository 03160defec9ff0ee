# The origin service: FastAPI under gunicorn (uvicorn workers). Storage is normally S3 (SPILLWAY_STORAGE=s3).
FROM debian:bookworm-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ffmpeg ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY transcoder ./transcoder
COPY origin ./origin
RUN python3 -m venv /venv && /venv/bin/pip install --no-cache-dir . \
 && useradd --system --home /var/lib/spillway --create-home spillway

USER spillway
ENV PATH=/venv/bin:$PATH \
    SPILLWAY_BIND=0.0.0.0:8080 \
    SPILLWAY_STATE_DIR=/var/lib/spillway/state \
    SPILLWAY_STORAGE_ROOT=/var/lib/spillway/storage
VOLUME /var/lib/spillway
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"
CMD ["spillway", "origin"]
