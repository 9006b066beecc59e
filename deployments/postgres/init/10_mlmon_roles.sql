-- Roles and databases of the compose PostgreSQL (docker-compose.yml, service `postgres`).
--
-- The official postgres image runs this file once, with psql, as the superuser, connected to
-- $POSTGRES_DB (the metrics database, `mlmon`), the first time its data volume is initialised. It is
-- idempotent, so you can run it again after changing a password in .env:
--
--   docker compose exec postgres psql -v ON_ERROR_STOP=1 -U postgres -d mlmon \
--       -f /docker-entrypoint-initdb.d/10_mlmon_roles.sql
--
-- Passwords come from the container's environment (psql's \getenv), never from this file:
--   MLMON_WRITER_PASSWORD    mlmon_writer: the pipeline; owns schema mlmon, runs the migrations
--   GRAFANA_READER_PASSWORD  grafana_reader: Grafana; SELECT on mlmon, read-only sessions
--   PREFECT_DB_PASSWORD      prefect: owns Prefect server's own database
--   PREFECT_DB_NAME          name of Prefect's database (optional, default prefect)
--
-- tests/deploy/test_postgres_roles.py runs this very file against a real PostgreSQL and checks what
-- each role can and cannot do.

\set ON_ERROR_STOP on
\set QUIET on
SET client_min_messages = warning;

-- ------------------------------------------------------------------------------ settings from env
\getenv writer_password MLMON_WRITER_PASSWORD
\getenv reader_password GRAFANA_READER_PASSWORD
\getenv prefect_password PREFECT_DB_PASSWORD
\getenv prefect_db PREFECT_DB_NAME
\if :{?prefect_db}
\else
\set prefect_db prefect
\endif

-- An unset or empty password fails the whole init (the container then exits with this message)
-- rather than creating a role nobody can log in as.
\set ok false
\if :{?writer_password}
SELECT :'writer_password' <> '' AS ok \gset
\endif
\if :ok
\else
DO $$ BEGIN RAISE EXCEPTION 'MLMON_WRITER_PASSWORD is not set: set it in .env'; END $$;
\endif
\set ok false
\if :{?reader_password}
SELECT :'reader_password' <> '' AS ok \gset
\endif
\if :ok
\else
DO $$ BEGIN RAISE EXCEPTION 'GRAFANA_READER_PASSWORD is not set: set it in .env'; END $$;
\endif
\set ok false
\if :{?prefect_password}
SELECT :'prefect_password' <> '' AS ok \gset
\endif
\if :ok
\else
DO $$ BEGIN RAISE EXCEPTION 'PREFECT_DB_PASSWORD is not set: set it in .env'; END $$;
\endif

-- ------------------------------------------------------------------------------------- roles
-- Created when missing, then (re)configured, so a second run updates passwords and settings.
SELECT format('CREATE ROLE %I', r) FROM unnest(ARRAY['mlmon_writer', 'grafana_reader', 'prefect']) AS r
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) \gexec

ALTER ROLE mlmon_writer WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'writer_password';
ALTER ROLE prefect WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'prefect_password';
ALTER ROLE grafana_reader WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'reader_password';
-- Grafana runs whatever SQL is typed into a panel: its sessions cannot write, even by mistake, and a
-- runaway query is cancelled instead of loading the database for ever.
ALTER ROLE grafana_reader SET default_transaction_read_only = on;
ALTER ROLE grafana_reader SET statement_timeout = '60s';
ALTER ROLE grafana_reader SET search_path = mlmon;
ALTER ROLE grafana_reader CONNECTION LIMIT 20;

-- --------------------------------------------------------------------------------- databases
-- Prefect server's own database, owned by its role (Prefect migrates it on start; it creates the
-- trusted extension pg_trgm, which a database owner may do).
SELECT format('CREATE DATABASE %I OWNER prefect', :'prefect_db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'prefect_db') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'prefect_db') \gexec
SELECT format('GRANT ALL ON DATABASE %I TO prefect', :'prefect_db') \gexec

-- The metrics database is the one this script runs in ($POSTGRES_DB). Only the two mlmon roles may
-- connect; the writer may create the mlmon schema (migrate() runs CREATE SCHEMA IF NOT EXISTS, which
-- needs CREATE on the database even when the schema exists) and temporary tables (retention's purge).
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database()) \gexec
SELECT format('GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %I TO mlmon_writer', current_database()) \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO grafana_reader', current_database()) \gexec

-- ----------------------------------------------------------------------------- schema mlmon
-- Owned by the writer, so the tables and views its migrations create are its own.
CREATE SCHEMA IF NOT EXISTS mlmon AUTHORIZATION mlmon_writer;
ALTER SCHEMA mlmon OWNER TO mlmon_writer;
REVOKE ALL ON SCHEMA mlmon FROM PUBLIC;
GRANT USAGE ON SCHEMA mlmon TO grafana_reader;
-- Tables and views that already exist (a re-run after migrations) ...
GRANT SELECT ON ALL TABLES IN SCHEMA mlmon TO grafana_reader;
-- ... and every one the writer creates later (default privileges apply to objects created by
-- mlmon_writer only: run migrations as mlmon_writer, never as the superuser).
ALTER DEFAULT PRIVILEGES FOR ROLE mlmon_writer IN SCHEMA mlmon GRANT SELECT ON TABLES TO grafana_reader;

-- Nothing in the public schema for the mlmon roles (PostgreSQL 15+ already denies CREATE there).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
-- Any role may terminate or cancel the sessions of its own role (Grafana's, `mlmon sql`'s): in the
-- metrics database only the superuser may.
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer) FROM PUBLIC;

\unset writer_password
\unset reader_password
\unset prefect_password
\echo 'mlmon roles ready: mlmon_writer (owns schema mlmon), grafana_reader (read-only), prefect (owns database' :prefect_db ')'
