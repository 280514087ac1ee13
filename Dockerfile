# One image for web, ingest and the demo simulators; the command selects the process.
#
# Production shape: dependencies from requirements.prod.lock (hash-pinned, no test extras), the code
# owned by root and read-only to the service, which runs as the unprivileged user "optria" (uid 10001).
# The one writable place is the data folder OPTRIA_DATA_DIR=/var/lib/optria (the ingest spool lives
# under it), owned by optria and declared a volume so a new named volume inherits that owner.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APP_ENV=production \
    OPTRIA_DATA_DIR=/var/lib/optria

RUN groupadd --system --gid 10001 optria \
    && useradd --system --uid 10001 --gid optria --home-dir /var/lib/optria --no-create-home \
       --shell /usr/sbin/nologin optria \
    && install -d -o optria -g optria -m 0750 /var/lib/optria

WORKDIR /app
COPY requirements.prod.lock pyproject.toml README.md ./
RUN pip install --require-hashes --no-deps -r requirements.prod.lock
COPY src ./src
COPY ingest ./ingest
COPY sql ./sql
COPY templates ./templates
RUN pip install --no-deps -e . && python -m compileall -q src ingest

USER optria:optria
VOLUME ["/var/lib/optria"]
EXPOSE 8000
CMD ["optria", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
