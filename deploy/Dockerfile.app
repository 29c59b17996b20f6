# The app image (web, worker, scheduler): Python 3.11, from requirements.lock.
FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install -r requirements.lock
COPY lanpya lanpya
COPY webhook webhook
COPY conversations conversations
COPY campaigns campaigns
COPY content content
COPY bot/menu.yml bot/menu.yml
RUN pip install --no-deps . && useradd --system --uid 1000 lanpya && mkdir -p /app/var && chown lanpya /app/var
USER lanpya
# each service sets its command (lanpya web | worker | scheduler), as `lanpya run` does
