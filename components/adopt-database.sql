-- Hands the objects of an existing database's schema public to a NOLOGIN owner role, so the
-- platform's app role, a member of it (database.ownerRole in the site file), may use and change them
-- and the backup job, which logs in as the app, may read them. Run once as the cluster's admin,
-- before the site's first deployment; running it again changes nothing:
--   psql -v owner=<role> -d <database> -f components/adopt-database.sql
\set ON_ERROR_STOP on
SELECT format('CREATE ROLE %I NOLOGIN', :'owner')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner') \gexec

-- Tables, views, materialized views and free sequences; owned sequences and indexes follow their
-- table.
SELECT format('ALTER %s public.%I OWNER TO %I',
              CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                             WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
              c.relname, :'owner')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
  AND pg_get_userbyid(c.relowner) <> :'owner'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
ORDER BY c.relname \gexec
