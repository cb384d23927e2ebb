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

  it("refuses the local stack's shared-cluster resources and any engine but this machine's", async () => {
    const local = await desiredState(ROOT, "local", path.join(ROOT, "sites"));
    const problems = unsupported(local.resources);
    assert.ok(
      problems.some((p) =>
        /^postgresql:index\/role:Role \S+: resource type is not honoured/.test(p),
      ),
      problems.join("\n"),
    );
    const remote = local.resources.map((r) =>
      r.type === "pulumi:providers:docker"
        ? { ...r, clearInputs: { host: "ssh://deploy@203.0.113.10:22" } }
        : r,
    );
    assert.ok(unsupported(remote).some((p) => /input host ssh:\/\/deploy@/.test(p)));
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
