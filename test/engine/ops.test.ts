/**
 * The host's operations on a real engine: the ops timer's job (components/ops/ops-tick.sh) heals an
 * app that stays unhealthy, stops at the hour's limit, and `npm run status` reports it from the
 * collector's real output; the image prune keeps what a rollback needs. Each scenario polls Docker
 * for the state it waits for (no fixed sleeps). Everything is labelled with the run and removed.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { synth } from "../../scripts/synth";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import { judge, parseHostReport } from "../../core/status";
import { edgeCertificate } from "../../scripts/status";
import { docker, run } from "./docker";
import { RUN_LABEL } from "./harness";
import { buildImages, tagsFor } from "./images";
import { appImagesOf } from "./project";

const ROOT = path.resolve(__dirname, "../..");
const OPS = path.join(ROOT, "components", "ops");
const runId = `ops${Date.now().toString(36)}`;
const log = (m: string) => process.stderr.write(`engine-ops: ${m}\n`);

/** Polls `probe` every 250 ms until it returns true, or fails after `seconds`. */
async function until(what: string, seconds: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`not within ${seconds} s: ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** `docker run` of a container NAME that the ops scripts take for SITE's app (labelled as such). */
const runApp = (name: string, site: string) => [
  "run",
  "--detach",
  "--name",
  name,
  "--label",
  `${RUN_LABEL}=${runId}`,
  "--label",
  "agi.managed-by=agi-platform",
  "--label",
  "agi.role=app",
  "--label",
  `agi.site=${site}`,
];

const health = async (name: string) => {
  const out = await docker([
    "inspect",
    "--format",
    "{{.State.Health.Status}} {{.State.Health.FailingStreak}} {{.State.StartedAt}}",
    name,
  ]);
  const [status, streak, started] = out.trim().split(" ");
  return { status, streak: Number(streak), started };
};

describe("host operations on the engine", { concurrency: false }, () => {
  let image = "";
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agi-engine-ops-"));
  const state = path.join(dir, "state");
  const backups = path.join(dir, "backups");
  const app = "opsx-app-0123abcd";

  before(async () => {
    const local = await synth(ROOT, "local", path.join(ROOT, "sites"), "sites");
    await buildImages(tagsFor(local.manifest.resources), log);
    [image] = appImagesOf(local.manifest.resources);
    fs.mkdirSync(backups, { recursive: true });
  });

  after(async () => {
    const ids = (await docker(["ps", "-aq", "--filter", `label=${RUN_LABEL}=${runId}`])).trim();
    if (ids) await run("docker", ["rm", "-f", ...ids.split("\n")]);
    await run("docker", ["network", "rm", "opsx-edge"]);
    const refs = (
      await docker([
        "image",
        "ls",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        "--filter",
        `reference=agi-ops-test/*`,
      ])
    ).trim();
    for (const ref of [...(refs ? refs.split("\n") : []), "agi-previous/agi-ops-test:latest"]) {
      await run("docker", ["rmi", ref]);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("restarts an app that stays unhealthy, stops at the hour's limit, and status fails on it", async () => {
    // The version that serves holds the site's name on its edge network; healing only touches it.
    await docker(["network", "create", "--label", `${RUN_LABEL}=${runId}`, "opsx-edge"]);
    await docker([
      ...runApp(app, "opsx"),
      "--network",
      "opsx-edge",
      "--network-alias",
      "opsx",
      "--health-cmd",
      "test ! -e /tmp/sick",
      "--health-interval",
      "1s",
      "--health-retries",
      "1",
      "--health-timeout",
      "5s",
      "--entrypoint",
      "sleep",
      image,
      "infinity",
    ]);
    await until("the app is healthy", 30, async () => (await health(app)).status === "healthy");
    const tick = () => run("sh", [path.join(OPS, "ops-tick.sh"), state, "2", "2"]);
    // A healthy app: sampled, never restarted.
    const calm = await tick();
    assert.equal(calm.code, 0, calm.stderr);
    assert.equal(fs.readFileSync(path.join(state, "heal.log"), "utf8"), "");
    assert.match(
      fs.readFileSync(path.join(state, "memory.log"), "utf8"),
      new RegExp(` ${app} \\d+\\n`),
    );

    // The app hangs (its probe fails from now on; the file survives a restart).
    await docker(["exec", app, "touch", "/tmp/sick"]);
    const starts: string[] = [(await health(app)).started];
    for (let i = 0; i < 2; i++) {
      await until("two failed probes in a row", 30, async () => (await health(app)).streak >= 2);
      const r = await tick();
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`restarted ${app}: unhealthy`));
      starts.push((await health(app)).started);
    }
    assert.equal(new Set(starts).size, 3, "each restart starts the container again");
    await until(
      "still failing after the restarts",
      30,
      async () => (await health(app)).streak >= 2,
    );
    const limited = await tick();
    assert.match(limited.stderr, /still unhealthy after 2 restarts this hour; left alone/);
    assert.equal((await health(app)).started, starts[2], "restarted past the limit");
    const heal = fs.readFileSync(path.join(state, "heal.log"), "utf8").trim().split("\n");
    assert.deepEqual(
      heal.map((l) => l.split(" ").slice(1, 3).join(" ")),
      [`${app} restarted`, `${app} restarted`, `${app} limit`],
    );

    // The status command's collector, on this engine, and its judgement.
    const report = await run("sh", [path.join(OPS, "status-collect.sh"), backups, state]);
    assert.equal(report.code, 0, report.stderr);
    const facts = parseHostReport(report.stdout);
    const checks = judge(facts, [{ site: "opsx", roles: ["app"], domains: [] }], []);
    const check = checks.find((c) => c.subject === "opsx" && c.check === "app");
    assert.equal(check?.verdict, "fail", JSON.stringify(check));
    assert.match(check.detail, /healing stopped/);
    assert.match(check.detail, /restarted 2x by healing in 24 h/);
  });

  it("prunes images nothing needs, keeping the running one and the rollback tag", async () => {
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      const ref = `agi-ops-test/shop:${n}`;
      await docker(["build", "--quiet", "--tag", ref, "--label", `agi-ops-test=${n}`, "-"], {
        input: `FROM ${image}\nLABEL n=${n}\n`,
      });
      ids.push((await docker(["image", "inspect", "--format", "{{.Id}}", ref])).trim());
    }
    assert.equal(new Set(ids).size, 3);
    await docker([
      "run",
      "--detach",
      "--label",
      `${RUN_LABEL}=${runId}`,
      "--entrypoint",
      "sleep",
      "agi-ops-test/shop:3",
      "infinity",
    ]);
    // What the app gate does when version 3 replaced version 2.
    await docker(["image", "tag", ids[1], "agi-previous/agi-ops-test:latest"]);
    const prune = (env: Record<string, string> = {}) =>
      run("sh", [path.join(OPS, "prune-images.sh"), "agi-ops-test/*"], {
        env: { ...process.env, ...env },
      });
    // Just tagged: a deploy may not have started its container yet, so the default keeps them all.
    const fresh = await prune();
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.match(fresh.stdout, /prune: 0 image reference\(s\) removed, 3 kept/);
    const r = await prune({ PRUNE_KEEP_RECENT_SECONDS: "0" });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /prune: removed agi-ops-test\/shop:1\n/);
    const exists = async (ref: string) =>
      (await run("docker", ["image", "inspect", ref])).code === 0;
    assert.equal(await exists("agi-ops-test/shop:1"), false);
    assert.equal(await exists("agi-ops-test/shop:2"), true, "the rollback image is gone");
    assert.equal(await exists("agi-ops-test/shop:3"), true, "the running image is gone");
  });

  it("status on this engine: a restart loop, an old backup, a full disk and a certificate near expiry are out of bounds", async () => {
    // A container in a restart loop (it exits at once; Docker restarts it).
    await docker([
      ...runApp("loopx-app-0123abcd", "loopx"),
      "--restart",
      "always",
      "--entrypoint",
      "sh",
      image,
      "-c",
      "exit 3",
    ]);
    await until("two restarts", 60, async () => {
      const n = await docker(["inspect", "--format", "{{.RestartCount}}", "loopx-app-0123abcd"]);
      return Number(n.trim()) >= 2;
    });
    // The backup root on a small file system of its own, nearly full, with an old backup record.
    const full = path.join(dir, "full");
    fs.mkdirSync(full);
    const mounted = await run("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", full]);
    assert.equal(mounted.code, 0, `a tmpfs for the full disk: ${mounted.stderr}`);
    try {
      fs.mkdirSync(path.join(full, "loopx"));
      const old = new Date(Date.now() - 3 * 86400_000).toISOString();
      fs.writeFileSync(
        path.join(full, "loopx", "status.json"),
        JSON.stringify({ site: "loopx", lastAttempt: old, lastSuccess: old, lastError: null }),
      );
      fs.writeFileSync(path.join(full, "filler"), Buffer.alloc(1843 * 1024));
      const report = await run("sh", [path.join(OPS, "status-collect.sh"), full, state]);
      assert.equal(report.code, 0, report.stderr);
      const facts = parseHostReport(report.stdout);

      // A certificate 10 days from expiry, from a CA of this test, served over real TLS.
      const pki = path.join(dir, "pki");
      fs.mkdirSync(pki);
      const ssl = async (...args: string[]) => {
        const r = await run("openssl", args, { cwd: pki });
        assert.equal(r.code, 0, r.stderr);
      };
      await ssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "90",
        "-subj",
        "/CN=agi test CA",
      );
      await ssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=near.test",
      );
      await ssl(
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.crt",
        "-days",
        "10",
      );
      const server = tls.createServer({
        key: fs.readFileSync(path.join(pki, "leaf.key")),
        cert: fs.readFileSync(path.join(pki, "leaf.crt")),
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      let cert;
      try {
        const port = (server.address() as AddressInfo).port;
        cert = await edgeCertificate("127.0.0.1", port, "near.test", true);
      } finally {
        server.close();
      }
      assert.equal(cert.error, undefined);
      assert.match(cert.issuer, /agi test CA/);

      const checks = judge(
        facts,
        [
          {
            site: "loopx",
            roles: ["app"],
            backupIntervalSeconds: 86400,
            backupDir: "loopx",
            domains: ["near.test"],
          },
        ],
        [cert],
      );
      const verdict = (check: string) => checks.find((c) => c.check === check);
      log(checks.map((c) => `${c.subject} ${c.check} ${c.verdict}: ${c.detail}`).join("\n"));
      assert.equal(verdict("app")?.verdict, "fail");
      assert.match(verdict("app")!.detail, /restarting|exit\(s\) in 24 h/);
      assert.equal(verdict("backup")?.verdict, "fail");
      assert.match(verdict("backup")!.detail, /^last verified 3\.0 days ago/);
      assert.equal(verdict("cert near.test")?.verdict, "fail");
      const disk = checks.find((c) => c.check === `disk ${full}`);
      assert.equal(
        disk?.verdict,
        "fail",
        JSON.stringify(checks.filter((c) => c.subject === "host")),
      );
      assert.equal(verdict("disk /")?.verdict !== undefined, true);
    } finally {
      await run("umount", [full]);
    }
  });
});
