import { PG_IDENTIFIER } from "../common";

/**
 * SQL the database owner runs once in each pooled database (in `auth_dbname` only, on PgBouncer 1.19+) for
 * the default `authQuery.query`: a SECURITY DEFINER lookup, so that `authUser` reads `pg_shadow` without
 * being a superuser; it never returns a superuser's secret. Run it as a superuser; the role `authUser` must
 * exist with LOGIN.
 */
export function authQueryFunctionSql(authUser: string): string {
  if (!PG_IDENTIFIER.test(authUser)) throw new Error(`"${authUser}" is not a plain PostgreSQL identifier`);
  return [
    "CREATE SCHEMA IF NOT EXISTS pgbouncer;",
    `REVOKE ALL ON SCHEMA pgbouncer FROM PUBLIC;`,
    `GRANT USAGE ON SCHEMA pgbouncer TO ${authUser};`,
    "CREATE OR REPLACE FUNCTION pgbouncer.get_auth(p_usename text)",
    "  RETURNS TABLE(usename name, passwd text) LANGUAGE sql SECURITY DEFINER",
    "  SET search_path = pg_catalog AS",
    // Superusers are never served through the pooler.
    "  $$ SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = p_usename AND NOT usesuper $$;",
    "REVOKE ALL ON FUNCTION pgbouncer.get_auth(text) FROM PUBLIC;",
    `GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(text) TO ${authUser};`,
  ].join("\n");
}
