# The worker (and the CLI, and `alembic upgrade head`): docker compose builds it.
FROM python:3.11.10-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, so code changes reuse this layer. Installing the project pulls only
# its dependencies (it puts no modules into site-packages; the code runs from /app).
COPY pyproject.toml README.md ./
RUN pip install .

COPY . .
RUN useradd --system --uid 10001 onboarding
USER onboarding

EXPOSE 9464
CMD ["python", "worker.py"]
