# The worker (and the CLI, the codec server, and `alembic upgrade head`): docker compose builds
# it. No secret is baked in: .env stays out (.dockerignore) and every secret comes from the
# environment at run time.
FROM python:3.11.10-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, so code changes reuse this layer: exactly the versions in the lock, each
# file checked against its hash (pip refuses anything unpinned or altered). The project itself
# is not installed: its code runs from /app.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

COPY . .
# The translations of customer mail, compiled from locales/*/LC_MESSAGES/*.po (never committed).
RUN pybabel compile --statistics -d locales
# Bytecode for every module, written while the code is still writable: the workflow sandbox
# loads the workflow modules afresh for each run it creates (see worker.compile_workflows).
RUN python -m compileall -q .
# The version the workers poll as (README: Deploying a new version): the image has no .git to
# read the commit from, so the build is told: `docker compose build --build-arg
# WORKER_BUILD_ID=0.4.0+$(git rev-parse --short=7 HEAD)`. Empty: the release version alone,
# which every build of that release shares.
ARG WORKER_BUILD_ID=""
ENV WORKER_BUILD_ID=${WORKER_BUILD_ID}
# The code stays root's (read-only to the app); the processes run as an unprivileged user.
RUN useradd --system --uid 10001 --no-create-home onboarding
USER onboarding

# 9464: the worker's Prometheus metrics; 8081: the codec server; 8000: the HTTP API (each its
# own service).
EXPOSE 9464 8081 8000
CMD ["python", "worker.py"]
