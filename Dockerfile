# Palier: the PWA is built in a Node stage; the Python image serves it with the API (gunicorn) and runs the
# job worker (huey_consumer) from the same image. See docker-compose.yml.
FROM node:20-bookworm-slim AS pwa
WORKDIR /src/pwa
COPY pwa/package.json pwa/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY pwa/ ./
RUN npm run build

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PALIER_ENV_NAME=production PALIER_INSTANCE_PATH=/var/lib/palier PALIER_PWA_DIST=/app/pwa/dist
WORKDIR /app
COPY pyproject.toml README.md gunicorn.conf.py ./
COPY server/ server/
COPY sync/ sync/
RUN pip install ".[postgres,redis]" \
    && useradd --system --home-dir /var/lib/palier --create-home palier
COPY --from=pwa /src/pwa/dist/ pwa/dist/
USER palier
EXPOSE 8000
CMD ["sh", "-c", "flask --app server db upgrade && exec gunicorn --workers 4 --threads 4 --bind 0.0.0.0:8000 'server:create_app()'"]
