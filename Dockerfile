# emo's image: the package with its CLI, MLflow (server and client) and the Optuna dashboard.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
WORKDIR /app

# the CPU build of torch first, so the dependency resolver does not pull a multi-GB CUDA build
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"

COPY pyproject.toml README.md ./
COPY emo ./emo
COPY entrypoints ./entrypoints
COPY MLproject conda.yaml ./
RUN pip install . optuna-dashboard

RUN useradd --create-home emo && mkdir -p /data /mlartifacts && chown emo /data /mlartifacts
USER emo
