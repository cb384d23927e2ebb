/** The harness refuses what it cannot realize, by name, before it creates anything. */
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { describe, it } from "node:test";
import type { RecordedResource } from "../../scripts/mock-engine";
import { desiredState, healthCommand, unsupported } from "./harness";

const ROOT = path.resolve(__dirname, "../..");

function container(inputs: Record<string, unknown>): RecordedResource {
  return {
    type: "docker:index/container:Container",
    name: "x-app",
    urn: "urn:pulumi:t::p::docker:index/container:Container::x-app",
    custom: true,
    inputs,
    clearInputs: inputs,
    secretPaths: [],
    options: {
      protect: false,
      dependsOn: [],
      providers: {},
      ignoreChanges: [],
      replaceOnChanges: [],
      aliases: 0,
    },
  };
}

describe("engine harness", () => {
  it("names every input it does not honour, nested ones too", () => {
    const problems = unsupported([
      container({
        image: "sha256:0",
        privileged: true,
        mounts: [{ type: "volume", source: "v", target: "/v", volumeOptions: { noCopy: true } }],
        memory: 64,
      }),
    ]);
    assert.deepEqual(problems, [
      "docker:index/container:Container x-app: input privileged is not honoured",
      "docker:index/container:Container x-app: input mounts.volumeOptions is not honoured",
    ]);
  });

  it("passes a container whose inputs it all honours", () => {
    assert.deepEqual(unsupported([container({ image: "sha256:0", memory: 64, cpus: "0.5" })]), []);
  });

  it("honours the whole local stack, its PostgreSQL resources included, and refuses any engine but this machine's", async () => {
    const local = await desiredState(ROOT, "local", path.join(ROOT, "sites"));
    assert.deepEqual(unsupported(local.resources), []);
    assert.ok(local.resources.some((r) => r.type === "postgresql:index/role:Role"));
    const remote = local.resources.map((r) =>
      r.type === "pulumi:providers:docker"
        ? { ...r, clearInputs: { host: "ssh://deploy@203.0.113.10:22" } }
        : r,
    );
    assert.ok(unsupported(remote).some((p) => /input host ssh:\/\/deploy@/.test(p)));
  });

  it("refuses PostgreSQL inputs and values it does not honour, by name", async () => {
    const local = await desiredState(ROOT, "local", path.join(ROOT, "sites"));
    const mutate = (name: string, inputs: Record<string, unknown>) =>
      unsupported(
        local.resources.map((r) =>
          r.name === name ? { ...r, clearInputs: { ...r.clearInputs, ...inputs } } : r,
        ),
      );
    assert.deepEqual(mutate("stepperslife-db-role", { name: 'x"; DROP ROLE postgres; --' }), [
      'postgresql:index/role:Role stepperslife-db-role: input name "x\\"; DROP ROLE postgres; --" is not a plain PostgreSQL name',
    ]);
    assert.deepEqual(mutate("stepperslife-db-role", { replication: true }), [
      "postgresql:index/role:Role stepperslife-db-role: input replication is not honoured",
    ]);
    assert.deepEqual(mutate("stepperslife-database", { owner: "someone" }), [
      "postgresql:index/database:Database stepperslife-database: input owner is not honoured",
    ]);
    assert.deepEqual(mutate("stepperslife-db-grant-connect", { privileges: ["ALL"] }), [
      'postgresql:index/grant:Grant stepperslife-db-grant-connect: input privileges "ALL" is not honoured for database',
    ]);
    assert.deepEqual(mutate("stepperslife-db-grant-schema", { objectType: "table" }), [
      'postgresql:index/grant:Grant stepperslife-db-grant-schema: input objectType "table" is not honoured',
      'postgresql:index/grant:Grant stepperslife-db-grant-schema: input privileges "CREATE" is not honoured for table',
      'postgresql:index/grant:Grant stepperslife-db-grant-schema: input privileges "USAGE" is not honoured for table',
      "postgresql:index/grant:Grant stepperslife-db-grant-schema: input schema is not honoured for table",
    ]);
    assert.deepEqual(mutate("local-shared-db", { sslmode: "require" }), [
      'pulumi:providers:postgresql local-shared-db: input sslmode "require" is not honoured (only "disable")',
    ]);
  });

  it("gives the exec-form healthcheck to the shell as the same words", () => {
    assert.equal(
      healthCommand("x", ["CMD", "node", "-e", "fetch('http://a/').then(() => 1)"]),
      "node -e 'fetch('\\''http://a/'\\'').then(() => 1)'",
    );
    assert.equal(
      healthCommand("x", ["CMD-SHELL", "pg_isready && test -f /r"]),
      "pg_isready && test -f /r",
    );
    assert.throws(() => healthCommand("x", ["NONE"]), /healthcheck\.tests/);
  });
});
