/** The harness refuses what it cannot realize, by name, before it creates anything. */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import type { RecordedResource } from "../../scripts/mock-engine";
import { Harness, desiredState, healthCommand, unsupported } from "./harness";

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

/** A local command resource whose scripts append what they do to `log`. */
function command(
  name: string,
  version: string,
  log: string,
  options: { dependsOn?: string[]; fail?: boolean; update?: boolean; retain?: boolean } = {},
): RecordedResource {
  const line = (what: string) => `echo "${what} ${name} ${version}" >> ${log}`;
  const inputs: Record<string, unknown> = {
    create: options.fail
      ? `${line("create")} && echo "${name} ${version} is not healthy" >&2 && exit 1`
      : line("create"),
    delete: line("delete"),
  };
  if (options.update) inputs.update = line("update");
  else inputs.triggers = [version];
  return {
    type: "command:local:Command",
    name,
    urn: `urn:pulumi:t::p::command:local:Command::${name}`,
    custom: true,
    inputs,
    clearInputs: inputs,
    secretPaths: [],
    options: {
      protect: false,
      retainOnDelete: options.retain,
      dependsOn: (options.dependsOn ?? []).map(
        (d) => `urn:pulumi:t::p::command:local:Command::${d}`,
      ),
      providers: {},
      ignoreChanges: [],
      replaceOnChanges: options.update ? [] : ["triggers[*]"],
      aliases: 0,
    },
  };
}

describe("engine harness: updates in Pulumi's order", () => {
  const setup = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agi-harness-"));
    const log = path.join(dir, "log");
    fs.writeFileSync(log, "");
    const harness = new Harness();
    harness.ownedDirs.push(dir);
    const lines = () => fs.readFileSync(log, "utf8").trim().split("\n").filter(Boolean);
    const done = () => {
      for (const d of [dir, harness.privateDir]) fs.rmSync(d, { recursive: true, force: true });
    };
    // gate (replaced when its version changes) <- route (updated in place), like an app's.
    const state = (v: string, failGate = false) => ({
      resources: [
        command("gate", v, log, { fail: failGate }),
        command("route", v, log, { dependsOn: ["gate"], update: true }),
      ],
    });
    return { harness, log, lines, done, state };
  };

  it("creates the replacement, updates dependents, deletes the replaced last", async () => {
    const t = setup();
    try {
      await t.harness.apply(t.state("v1"));
      const report = await t.harness.update(t.state("v2"));
      assert.deepEqual(t.lines(), [
        "create gate v1",
        "create route v1",
        "create gate v2",
        "update route v2",
        "delete gate v1",
      ]);
      assert.deepEqual(report, {
        created: [],
        updated: ["route"],
        replaced: ["gate"],
        deleted: ["gate"],
        retained: [],
      });
      // Nothing changed: nothing runs.
      await t.harness.update(t.state("v2"));
      assert.equal(t.lines().length, 5);
    } finally {
      t.done();
    }
  });

  it("honours ignoreChanges: a change only in an ignored input runs nothing", async () => {
    const t = setup();
    try {
      const ignoring = (v: string) => {
        const r = command("route", v, t.log, { update: true });
        return { ...r, options: { ...r.options, ignoreChanges: ["create", "update", "delete"] } };
      };
      await t.harness.apply({ resources: [ignoring("v1")] });
      const report = await t.harness.update({ resources: [ignoring("v2")] });
      assert.deepEqual(t.lines(), ["create route v1"]);
      assert.deepEqual(report.updated, []);
    } finally {
      t.done();
    }
  });

  it("stops at a failed create: nothing after it runs, nothing is deleted, the error is reported", async () => {
    const t = setup();
    try {
      await t.harness.apply(t.state("v1"));
      await assert.rejects(
        t.harness.update(t.state("v2", true)),
        /gate: create exited 1: gate v2 is not healthy/,
      );
      assert.deepEqual(t.lines(), ["create gate v1", "create route v1", "create gate v2"]);
      // The old gate is still the one in force: the next update replaces it.
      await t.harness.update(t.state("v3"));
      assert.deepEqual(t.lines().slice(3), ["create gate v3", "update route v3", "delete gate v1"]);
    } finally {
      t.done();
    }
  });

  it("removes what the desired state lacks, dependents first, and honours retainOnDelete", async () => {
    const t = setup();
    try {
      const kept = command("data", "v1", t.log, { retain: true });
      await t.harness.apply({ resources: [...t.state("v1").resources, kept] });
      const report = await t.harness.update({ resources: [] });
      assert.deepEqual(t.lines().slice(3), ["delete route v1", "delete gate v1"]);
      assert.deepEqual(report.retained, ["data"]);
    } finally {
      t.done();
    }
  });

  it("refuses options it cannot honour", () => {
    const r = command("gate", "v1", "/dev/null");
    const odd = {
      ...r,
      options: { ...r.options, ignoreChanges: ["create", "stdin[0]"], replaceOnChanges: ["stdin"] },
    };
    assert.deepEqual(unsupported([odd]), [
      "command:local:Command gate: option ignoreChanges stdin[0] is not honoured",
      "command:local:Command gate: option replaceOnChanges stdin is not honoured",
    ]);
  });
});

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
