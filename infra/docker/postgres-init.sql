-- One role and one database per service, as contracts.services.Service names them: role,
-- password and database all carry the service's name (local development credentials only).
-- The postgres image runs this once, when it creates its data directory.
-- CREATEDB: the tests create scratch databases with each service's role.
CREATE ROLE booking LOGIN CREATEDB PASSWORD 'booking';
CREATE DATABASE booking OWNER booking;

CREATE ROLE workouts LOGIN CREATEDB PASSWORD 'workouts';
CREATE DATABASE workouts OWNER workouts;

CREATE ROLE credits LOGIN CREATEDB PASSWORD 'credits';
CREATE DATABASE credits OWNER credits;

CREATE ROLE analytics LOGIN CREATEDB PASSWORD 'analytics';
CREATE DATABASE analytics OWNER analytics;
