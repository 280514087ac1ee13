# One image for web, ingest and simulators; the command selects the process.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 APP_ENV=production
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY src ./src
COPY ingest ./ingest
COPY sql ./sql
COPY templates ./templates
RUN pip install --no-cache-dir --no-deps -e . && useradd --system --create-home optria
USER optria
EXPOSE 8000
CMD ["optria", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
