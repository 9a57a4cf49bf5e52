#!/bin/sh
# Per service, as contracts.services.Service names them: its database, its owner role (runs
# the migrations; may create databases) and its runtime role (what the service connects as:
# no CREATEDB, no DDL). Only they may connect to the database. Passwords come from the
# postgres container's environment (docker-compose.yml; .env.example names them).
# The postgres image runs this once, when it creates its data directory.
set -eu

setup_service() {  # name owner-password runtime-password
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v name="$1" -v runtime="$1_runtime" -v owner_password="$2" -v runtime_password="$3" <<'SQL'
CREATE ROLE :"name" LOGIN CREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE :"runtime" LOGIN NOCREATEDB NOCREATEROLE PASSWORD :'runtime_password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE CONNECT, TEMPORARY ON DATABASE :"name" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"name" TO :"runtime";
SQL
}

setup_service booking "$BOOKING_OWNER_PASSWORD" "$BOOKING_RUNTIME_PASSWORD"
setup_service workouts "$WORKOUTS_OWNER_PASSWORD" "$WORKOUTS_RUNTIME_PASSWORD"
setup_service credits "$CREDITS_OWNER_PASSWORD" "$CREDITS_RUNTIME_PASSWORD"
setup_service analytics "$ANALYTICS_OWNER_PASSWORD" "$ANALYTICS_RUNTIME_PASSWORD"
