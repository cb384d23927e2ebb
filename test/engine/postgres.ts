/**
 * The engine harness's PostgreSQL provider: realizes the `postgresql` resources the program declares
 * (Provider, Role, Database, Grant) with psql in the cluster container this run created, as the
 * provider would: the provider's login is checked from this machine over the published admin port
 * with its password; every statement then runs as that admin through `docker exec` (SQL on standard
 * input, never on a command line). Every name is checked against one pattern before it is quoted
 * into SQL, and every input the harness does not honour is refused by name (see `pgProblems`).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { RecordedResource } from "../../scripts/mock-engine";
import { run } from "./docker";

export const PG = {
  provider: "pulumi:providers:postgresql",
  role: "postgresql:index/role:Role",
  database: "postgresql:index/database:Database",
  grant: "postgresql:index/grant:Grant",
} as const;
export const PG_TYPES = new Set<string>(Object.values(PG));

/** Inputs honoured per type (the harness's KNOWN table). */
export const PG_KNOWN: Record<string, Record<string, true>> = {
  [PG.provider]: {
    host: true,
    port: true,
    username: true,
    password: true,
    database: true,
    sslmode: true,
    superuser: true,
    connectTimeout: true,
  },
  [PG.role]: {
    name: true,
    login: true,
    password: true,
    superuser: true,
    createDatabase: true,
    createRole: true,
    inherit: true,
    roles: true,
  },
  [PG.database]: { name: true },
  [PG.grant]: { database: true, role: true, objectType: true, privileges: true, schema: true },
};

/** A role, database or schema name the harness quotes into SQL: nothing else is accepted. */
export const PG_IDENT = /^[a-z_][a-z0-9_]{0,62}$/;
/** Privileges per object type, as the provider takes them. */
const PRIVILEGES: Record<string, string[]> = {
  database: ["CONNECT", "CREATE", "TEMPORARY"],
  schema: ["CREATE", "USAGE"],
};
/** Where the PostgreSQL 15 client is on this machine (the unit suite needs it too). */
const PSQL_CANDIDATES = ["/usr/lib/postgresql/15/bin/psql", "/usr/bin/psql"];

/** Every value of a PostgreSQL resource the harness cannot honour, as "input ...: why". */
export function pgProblems(r: RecordedResource): string[] {
  const i = r.clearInputs;
  const out: string[] = [];
  const ident = (key: string, value: unknown, allowPublic = false) => {
    if (typeof value !== "string" || !(PG_IDENT.test(value) || (allowPublic && value === "public")))
      out.push(`input ${key} ${JSON.stringify(value)} is not a plain PostgreSQL name`);
  };
  const bool = (key: string, allowed: boolean[] = [true, false]) => {
    if (i[key] !== undefined && !allowed.includes(i[key] as boolean))
      out.push(`input ${key} ${JSON.stringify(i[key])} is not honoured`);
  };
  switch (r.type) {
    case PG.provider:
      ident("username", i.username);
      ident("database", i.database);
      if (i.sslmode !== "disable")
        out.push(`input sslmode ${JSON.stringify(i.sslmode)} is not honoured (only "disable")`);
      // The harness never relies on the admin being a superuser, as superuser=false tells the
      // provider. (A provider's inputs reach the engine as strings.)
      if (![false, "false"].includes(i.superuser as boolean | string))
        out.push(`input superuser ${JSON.stringify(i.superuser)} is not honoured (only false)`);
      if (typeof i.password !== "string") out.push("input password is required");
      break;
    case PG.role:
      ident("name", i.name);
      for (const k of ["login", "superuser", "createDatabase", "createRole", "inherit"]) bool(k);
      for (const m of (i.roles as unknown[] | undefined) ?? []) ident("roles", m);
      if (i.password !== undefined && typeof i.password !== "string")
        out.push("input password is not a string");
      break;
    case PG.database:
      ident("name", i.name);
      break;
    case PG.grant: {
      ident("database", i.database);
      ident("role", i.role, true);
      const type = String(i.objectType);
      const allowed = PRIVILEGES[type];
      if (!allowed) out.push(`input objectType ${JSON.stringify(i.objectType)} is not honoured`);
      for (const p of (i.privileges as unknown[] | undefined) ?? []) {
        if (!allowed?.includes(p as string))
          out.push(`input privileges ${JSON.stringify(p)} is not honoured for ${type}`);
      }
      if (type === "schema") ident("schema", i.schema);
      else if (i.schema !== undefined) out.push(`input schema is not honoured for ${type}`);
      break;
    }
  }
  return out;
}

/** A checked name as a quoted identifier. */
function q(name: unknown): string {
  if (typeof name !== "string" || !PG_IDENT.test(name))
    throw new Error(`harness: ${JSON.stringify(name)} is not a plain PostgreSQL name`);
  return `"${name}"`;
}

/** A grantee: PUBLIC, or a checked role name. */
function grantee(role: unknown): string {
  return role === "public" ? "PUBLIC" : q(role);
}

/** A string literal (standard_conforming_strings is on in PostgreSQL 15). */
function literal(value: string): string {
  if (value.includes("\0")) throw new Error("harness: a NUL byte in a SQL literal");
  return `'${value.replace(/'/g, "''")}'`;
}

/** One shared cluster, as a PostgreSQL provider of the program reaches it. */
export class SharedCluster {
  private constructor(
    /** Docker name of the cluster container. */
    readonly container: string,
    /** The provider's administrative role and database. */
    readonly admin: string,
    readonly adminDatabase: string,
  ) {}

  /**
   * Checks the provider's login as the provider makes it (TCP to host:port, its user and password,
   * no TLS) from this machine, then returns the cluster the provider's resources are applied to.
   */
  static async connect(
    provider: RecordedResource,
    container: string,
    privateDir: string,
  ): Promise<SharedCluster> {
    const i = provider.clearInputs;
    const psql = PSQL_CANDIDATES.find((p) => fs.existsSync(p));
    if (!psql) {
      throw new Error(
        `${provider.name}: the PostgreSQL 15 client (psql) is needed to check the provider's login (apt-get install postgresql-client-15)`,
      );
    }
    // The password goes through a 0600 passfile in the private directory, never a command line.
    const passfile = path.join(privateDir, `pgpass-${provider.name}`);
    const host = String(i.host);
    const port = String(i.port);
    const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/:/g, "\\:");
    fs.writeFileSync(
      passfile,
      `${esc(host)}:${port}:*:${esc(String(i.username))}:${esc(String(i.password))}\n`,
      { mode: 0o600 },
    );
    try {
      const conninfo = `host=${host} port=${port} user=${String(i.username)} dbname=${String(i.database)} sslmode=disable connect_timeout=${Number(i.connectTimeout ?? 15)}`;
      const r = await run(psql, ["-X", "-w", "-At", "-d", conninfo, "-c", "SELECT current_user"], {
        env: { PATH: process.env.PATH, PGPASSFILE: passfile },
      });
      if (r.code !== 0 || r.stdout.trim() !== i.username) {
        throw new Error(
          `${provider.name}: the provider's login to ${host}:${port} as ${String(i.username)} failed: ${(r.stderr || r.stdout).trim()}`,
        );
      }
    } finally {
      fs.rmSync(passfile, { force: true });
    }
    return new SharedCluster(container, String(i.username), String(i.database));
  }

  /** Runs SQL (standard input) in `database` as the provider's admin, inside the cluster container. */
  async sql(database: string, text: string): Promise<string> {
    const r = await run(
      "docker",
      [
        "exec",
        "-i",
        this.container,
        "psql",
        "-X",
        "-q",
        "-At",
        "-v",
        "ON_ERROR_STOP=1",
        "-U",
        this.admin,
        "-d",
        database,
      ],
      { input: text },
    );
    if (r.code !== 0)
      throw new Error(`psql in ${this.container} (${database}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Creates a Role, Database or Grant as the provider does. */
  async create(r: RecordedResource): Promise<void> {
    const i = r.clearInputs;
    switch (r.type) {
      case PG.role: {
        const attrs = [
          i.login ? "LOGIN" : "NOLOGIN",
          i.superuser ? "SUPERUSER" : "NOSUPERUSER",
          i.createDatabase ? "CREATEDB" : "NOCREATEDB",
          i.createRole ? "CREATEROLE" : "NOCREATEROLE",
          i.inherit === false ? "NOINHERIT" : "INHERIT",
        ];
        if (typeof i.password === "string") attrs.push(`PASSWORD ${literal(i.password)}`);
        const lines = [`CREATE ROLE ${q(i.name)} WITH ${attrs.join(" ")};`];
        for (const m of (i.roles as string[] | undefined) ?? [])
          lines.push(`GRANT ${q(m)} TO ${q(i.name)};`);
        await this.sql(this.adminDatabase, `${lines.join("\n")}\n`);
        break;
      }
      case PG.database:
        await this.sql(this.adminDatabase, `CREATE DATABASE ${q(i.name)};\n`);
        break;
      case PG.grant: {
        // The provider's grant is exact: revoke what the grantee had, then grant the list.
        const privileges = (i.privileges as string[] | undefined) ?? [];
        const [on, db] =
          i.objectType === "database"
            ? [`DATABASE ${q(i.database)}`, this.adminDatabase]
            : [`SCHEMA ${q(i.schema)}`, String(i.database)];
        const lines = [`REVOKE ALL ON ${on} FROM ${grantee(i.role)};`];
        if (privileges.length)
          lines.push(`GRANT ${privileges.join(", ")} ON ${on} TO ${grantee(i.role)};`);
        await this.sql(q(db).slice(1, -1), `${lines.join("\n")}\n`);
        break;
      }
      default:
        throw new Error(`${r.name}: type ${r.type} is not realized`);
    }
  }

  /** Deletes a Role, Database or Grant as the provider does. */
  async delete(r: RecordedResource): Promise<void> {
    const i = r.clearInputs;
    switch (r.type) {
      case PG.role:
        await this.sql(this.adminDatabase, `DROP ROLE ${q(i.name)};\n`);
        break;
      case PG.database:
        await this.sql(this.adminDatabase, `DROP DATABASE ${q(i.name)};\n`);
        break;
      case PG.grant: {
        const [on, db] =
          i.objectType === "database"
            ? [`DATABASE ${q(i.database)}`, this.adminDatabase]
            : [`SCHEMA ${q(i.schema)}`, String(i.database)];
        await this.sql(q(db).slice(1, -1), `REVOKE ALL ON ${on} FROM ${grantee(i.role)};\n`);
        break;
      }
      default:
        throw new Error(`${r.name}: type ${r.type} is not realized`);
    }
  }
}
