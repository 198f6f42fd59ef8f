# emo's image: the package with its CLI, MLflow (server with basic auth, and client) and the Optuna
# dashboard. Base image and tools pinned: a rebuild installs what was tested, not whatever is newest.
FROM python:3.11.14-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
WORKDIR /app

# the CPU build of torch first, from PyTorch's CPU index (PyPI's Linux wheels are the multi-GB CUDA
# build); the same torch as conda.yaml and the logged models' requirements. README: the GPU path.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"

COPY pyproject.toml README.md ./
COPY emo ./emo
COPY entrypoints ./entrypoints
COPY docker ./docker
COPY MLproject conda.yaml ./
# mlflow pinned to the release the tests run against: the server, its schema migrations and the
# workers' client then match what was tested (tests/test_service.py checks the pin). The `auth` extra
# is MLflow's basic-auth app, which the stack's server runs; gunicorn serves the Optuna dashboard
# (and stays below 27, as mlflow requires).
RUN pip install . "mlflow[auth]==3.17.2" "optuna-dashboard==0.21.0" "gunicorn==26.2.0"

RUN useradd --create-home emo && mkdir -p /data /mlartifacts && chown emo /data /mlartifacts
USER emo
