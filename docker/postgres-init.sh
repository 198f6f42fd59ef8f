#!/bin/sh
# Runs once, when the PostgreSQL volume is created: a second database for Optuna beside MLflow's.
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c "CREATE DATABASE \"${OPTUNA_DB:-optuna}\" OWNER \"$POSTGRES_USER\""
