-- Hands the objects of an existing database's schema public (tables, views, sequences, types and
-- functions) to a NOLOGIN owner role, so the platform's app role, a member of it
-- (database.ownerRole in the site file), may use and change them, and the backup job, which logs in
-- as the app, may read them. Their previous owners (other than superusers) become members too, so
-- the running app keeps its access until it is replaced. Run once as the cluster's admin, before the
-- site's first deployment; running it again changes nothing:
--   psql -v owner=<role> -d <database> -f components/adopt-database.sql
\set ON_ERROR_STOP on
SELECT format('CREATE ROLE %I NOLOGIN', :'owner')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner') \gexec

-- Giving an object away needs membership of the new owner (PostgreSQL 15 does not make a role's
-- creator a member); a superuser needs none.
SELECT format('GRANT %I TO %I', :'owner', current_user)
WHERE NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
  AND NOT pg_has_role(current_user, :'owner', 'MEMBER') \gexec

-- An owner needs the right to create in the schema its objects live in.
GRANT USAGE, CREATE ON SCHEMA public TO :"owner";

-- Everything to hand over: not part of an extension, not owned by the owner role already. Owned
-- sequences and indexes follow their table.
CREATE TEMP TABLE adopt_objects AS
SELECT format('ALTER %s public.%I OWNER TO %I',
              CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                             WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
              c.relname, :'owner') AS statement, c.relowner AS owner
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i', 'e'))
UNION ALL
SELECT format('ALTER %s public.%I OWNER TO %I', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
              t.typname, :'owner'), t.typowner
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = 'public'
  AND (t.typtype IN ('e', 'd', 'r')
       OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
UNION ALL
SELECT format('ALTER ROUTINE public.%I(%s) OWNER TO %I', p.proname,
              pg_get_function_identity_arguments(p.oid), :'owner'), p.proowner
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e');
DELETE FROM adopt_objects WHERE pg_get_userbyid(owner) = :'owner';

-- The previous owners keep their access through membership.
SELECT DISTINCT format('GRANT %I TO %I', :'owner', pg_get_userbyid(o.owner))
FROM adopt_objects o JOIN pg_roles r ON r.oid = o.owner
WHERE NOT r.rolsuper AND NOT pg_has_role(r.oid, :'owner', 'MEMBER') \gexec

SELECT statement FROM adopt_objects ORDER BY statement \gexec
DROP TABLE adopt_objects;
