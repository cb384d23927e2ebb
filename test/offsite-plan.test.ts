/**
 * Off-site copies as the program and the commands plan them, without a remote: the stack's `offsite`
 * settings checked where they enter, the job's words, the uploader's environment file (credentials
 * only there, never a line break), the program's resources under mocks (no credential in the synth
 * output), `npm run restore -- --from offsite` refusing before it connects, and `status` judging
 * the upload record.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { StackSettingsSchema } from "../stacks/settings";
import { formatProblem, parseStackSettings } from "../core/validate";
import { backupExecStart, jobHost, offsiteEnvFile } from "../core/timers";
import { hostTarget } from "../core/host";
import { hostNamesOf } from "../core/names";
import { judge, parseHostReport } from "../core/status";
import {
  hostScriptText,
  main as restoreMain,
  parseRestoreArgs,
  readIdentity,
} from "../scripts/restore";
import { placeholderFor, synth } from "../scripts/synth";
import { runInProcess, settings, tempDir, website, writeProject } from "./helpers";

const RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
/** An identity of the right shape made up for these tests; it opens nothing. */
const IDENTITY = `AGE-SECRET-KEY-1${"Q".repeat(58)}`;
const OFFSITE = {
  provider: "Cloudflare",
  endpoint: "https://0123456789abcdef.r2.cloudflarestorage.com",
  bucket: "agi-backups",
  prefix: "prod",
  recipient: RECIPIENT,
};

function problems(over: Record<string, unknown>): string[] {
  return parseStackSettings(
    settings({ offsite: { ...OFFSITE, ...over } }),
    "Pulumi.test.yaml",
  ).problems.map((p) => formatProblem(p).replace(/, got .*$/s, ""));
}

test("offsite settings: defaults, and every field checked where it enters", () => {
  const s = StackSettingsSchema.parse(settings({ offsite: OFFSITE }));
  assert.deepEqual(s.offsite, {
    ...OFFSITE,
    region: "auto",
    accessKeyIdSecret: "offsiteAccessKeyId",
    secretAccessKeySecret: "offsiteSecretAccessKey",
    retention: { daily: 14, weekly: 8, monthly: 24 },
  });
  assert.equal(s.images.uploader, "rclone/rclone:1.60.1");
  const f = "Pulumi.test.yaml: agi-platform:settings.offsite";
  const cases: [Record<string, unknown>, string][] = [
    [
      { endpoint: "http://backup.example.com" },
      `${f}.endpoint: must use https (plain http only to a loopback or private address)`,
    ],
    [
      { endpoint: "https://x.example.com/bucket?x=1" },
      `${f}.endpoint: must be an http(s) URL of a host and an optional port, such as "https://<account>.r2.cloudflarestorage.com"`,
    ],
    [
      { bucket: "Agi_Backups" },
      `${f}.bucket: must be a bucket name: 3-63 lower-case letters, digits, '.' and '-'`,
    ],
    [{ prefix: "../other" }, `${f}.prefix: must be a path of plain segments such as "agi/prod"`],
    [{ prefix: "a b" }, `${f}.prefix: must be a path of plain segments such as "agi/prod"`],
    [
      { recipient: IDENTITY },
      `${f}.recipient: must be an age public key ("age1" and 58 more characters, as age-keygen prints it)`,
    ],
    [
      { provider: "Other;id" },
      `${f}.provider: must be an rclone S3 provider name such as "Cloudflare"`,
    ],
    [
      { accessKeyIdSecret: "AKIAIOSFODNN7EXAMPLE" },
      `${f}.accessKeyIdSecret: looks like a secret value itself; write the name of the config key that holds it`,
    ],
    [
      { accessKeyIdSecret: "k", secretAccessKeySecret: "k" },
      `${f}.secretAccessKeySecret: accessKeyIdSecret and secretAccessKeySecret must be two keys`,
    ],
    [
      { retention: { daily: 0, weekly: 0, monthly: 0 } },
      `${f}.retention: keeps nothing: at least one of daily, weekly and monthly must be above 0`,
    ],
    [{ retention: { daily: 1.5 } }, `${f}.retention.daily: must be a whole number`],
  ];
  for (const [over, expected] of cases) {
    assert.deepEqual(problems(over), [expected], JSON.stringify(over));
  }
  // A private address may be reached over plain http (a box on the LAN, the tests' local server).
  assert.deepEqual(problems({ endpoint: "http://172.17.0.1:9000" }), []);
  assert.deepEqual(problems({ endpoint: "http://192.168.1.20:9000/" }), []);
  // A public name that merely starts like a private address is not one.
  for (const endpoint of [
    "http://10.example.com",
    "http://127.evil.net:80",
    "http://localhost.evil.net",
  ]) {
    assert.deepEqual(
      problems({ endpoint }),
      [`${f}.endpoint: must use https (plain http only to a loopback or private address)`],
      endpoint,
    );
  }
});

test("the backup job's words carry the off-site settings; the credentials stay a file's path", () => {
  const s = StackSettingsSchema.parse(settings({ offsite: OFFSITE }));
  const host = jobHost(s.hosts[0], hostTarget(s.hosts[0]), s);
  const job = {
    site: "shop",
    database: "shop",
    mode: "dedicated" as const,
    dir: "/srv/agi/backups/shop",
    retention: { daily: 7, weekly: 4, monthly: 12 },
  };
  assert.equal(
    backupExecStart(job, host),
    "/bin/sh /srv/agi/bin/backup/site-backup.sh backup site=shop database=shop dir=/srv/agi/backups/shop retention=7:4:12 dedicated=shop-db " +
      `offsite=agi-backups/prod recipient=${RECIPIENT} offsite_keep=14:8:24 offsite_env=/srv/agi/secrets/offsite.env uploader=rclone/rclone:1.60.1`,
  );
  // Without offsite, the words are as before.
  const plain = jobHost(s.hosts[0], hostTarget(s.hosts[0]));
  assert.doesNotMatch(backupExecStart(job, plain), /offsite/);
  // The uploader's short-lived container takes a name no site may have.
  assert.ok(hostNamesOf("shop").includes("shop-offsite"));
});

test("the uploader's environment file: the remote and its credentials; a line break is refused without the value", () => {
  const o = StackSettingsSchema.parse(settings({ offsite: OFFSITE })).offsite!;
  assert.equal(
    offsiteEnvFile(o, "key-id", "secret/with+chars="),
    [
      "RCLONE_CONFIG_OFFSITE_TYPE=s3",
      "RCLONE_CONFIG_OFFSITE_PROVIDER=Cloudflare",
      "RCLONE_CONFIG_OFFSITE_ENDPOINT=https://0123456789abcdef.r2.cloudflarestorage.com",
      "RCLONE_CONFIG_OFFSITE_REGION=auto",
      "RCLONE_CONFIG_OFFSITE_ACCESS_KEY_ID=key-id",
      "RCLONE_CONFIG_OFFSITE_SECRET_ACCESS_KEY=secret/with+chars=",
      "RCLONE_CONFIG_OFFSITE_NO_CHECK_BUCKET=true",
      "",
    ].join("\n"),
  );
  for (const bad of ["abc\nRCLONE_CONFIG_OFFSITE_ENDPOINT=https://evil.example", "", "a\rb"]) {
    assert.throws(
      () => offsiteEnvFile(o, "key-id", bad),
      (err: Error) =>
        err.message ===
          "the secret config key offsiteSecretAccessKey is empty or holds a line break; set it again with pulumi config set --secret offsiteSecretAccessKey" &&
        (bad === "" || !err.message.includes(bad)),
    );
  }
});

test("synth: the uploader image and the 0600 settings file are planned, the credentials are secret and absent", async () => {
  const root = writeProject("test", settings({ offsite: OFFSITE, dns: { provider: "none" } }), [
    website("shop", { database: { mode: "dedicated" } }),
  ]).root;
  const { manifest } = await synth(root, "test", path.join(root, "sites"), "sites");
  const text = JSON.stringify(manifest);
  const env = manifest.resources.find((r) => r.name === "vps1-offsite-env")!;
  assert.ok(env, "the settings file is installed");
  assert.equal(env.inputs.stdin, "[secret]");
  assert.equal(
    env.inputs.create,
    "umask 077 && mkdir -p /srv/agi/secrets && chmod 700 /srv/agi/secrets && cat > /srv/agi/secrets/offsite.env.new && mv -f /srv/agi/secrets/offsite.env.new /srv/agi/secrets/offsite.env",
  );
  const image = manifest.resources.find((r) => r.name === "vps1-uploader-image")!;
  assert.equal(image.inputs.name, "rclone/rclone:1.60.1");
  // The timers wait for both.
  const timer = manifest.resources.find((r) => r.name === "shop-backup-timer")!;
  for (const dep of ["vps1-offsite-env", "vps1-uploader-image"]) {
    assert.ok(
      timer.options.dependsOn.some((d) => d.endsWith(`::${dep}`)),
      `${dep} in ${timer.options.dependsOn.join(" ")}`,
    );
  }
  assert.match(String(timer.inputs.create), / offsite=agi-backups\/prod recipient=age1/);
  // The credentials (under mocks, recognisable placeholders) appear nowhere in the output.
  for (const key of ["offsiteAccessKeyId", "offsiteSecretAccessKey"]) {
    assert.ok(!text.includes(placeholderFor(`agi-platform:${key}`)), `${key} in the synth output`);
  }
});

test("restore --from offsite: an identity file is required, read as one line, and never shown", async () => {
  assert.throws(
    () => parseRestoreArgs(["--stack", "prod", "--site", "x", "--from", "offsite"]),
    /--from offsite needs --identity FILE/,
  );
  assert.throws(
    () => parseRestoreArgs(["--stack", "prod", "--site", "x", "--from", "cloud"]),
    /--from: "cloud" is not "local" or "offsite"/,
  );
  assert.throws(
    () => parseRestoreArgs(["--stack", "prod", "--site", "x", "--list"]),
    /--list is for --from offsite/,
  );
  assert.throws(
    () => parseRestoreArgs(["--stack", "prod", "--site", "x", "--identity", "k"]),
    /--identity is for --from offsite/,
  );
  assert.throws(
    () =>
      parseRestoreArgs([
        "--stack",
        "prod",
        "--site",
        "x",
        "--from",
        "offsite",
        "--identity",
        "k",
        "--backup",
        "daily/x.dump",
      ]),
    /is not an off-site dump's name/,
  );
  assert.deepEqual(
    parseRestoreArgs([
      "--stack",
      "prod",
      "--site",
      "shop",
      "--from",
      "offsite",
      "--identity",
      "k",
      "--backup",
      "shop-20261202T021700Z",
    ]),
    {
      stack: "prod",
      site: "shop",
      backup: "shop-20261202T021700Z",
      intoScratch: false,
      yes: false,
      sites: "sites",
      from: "offsite",
      identity: "k",
      list: false,
    },
  );

  const dir = tempDir("identity");
  const file = path.join(dir, "key.txt");
  fs.writeFileSync(file, `# created: 2026-12-02\n# public key: ${RECIPIENT}\n${IDENTITY}\n`);
  assert.equal(readIdentity(file), IDENTITY);
  fs.writeFileSync(file, `${IDENTITY}\n${IDENTITY.replace(/Q$/, "P")}\n`);
  assert.throws(
    () => readIdentity(file),
    (e: Error) => /holds 2$/.test(e.message) && !e.message.includes(IDENTITY.slice(16)),
  );
  fs.writeFileSync(file, "AGE-SECRET-KEY-1-not-a-key");
  assert.throws(
    () => readIdentity(file),
    (e: Error) => /holds 0$/.test(e.message) && !e.message.includes("not-a-key"),
  );
  // On the host's standard input, as a shell variable ahead of the script; never in its arguments.
  const text = hostScriptText(IDENTITY);
  assert.ok(text.startsWith(`AGI_AGE_IDENTITY=${IDENTITY}\n#!/bin/sh\n`));
  assert.throws(() => hostScriptText("AGE-SECRET-KEY-1$(id)"), /not an age identity line/);

  // A stack without off-site storage is refused before any connection.
  const r = await runInProcess(restoreMain, [
    "--stack",
    "prod",
    "--site",
    "stepperslife",
    "--from",
    "offsite",
    "--identity",
    file,
    "--yes",
  ]);
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr,
    "restore: stack prod declares no off-site storage (offsite in Pulumi.prod.yaml)\n",
  );
});

test("status judges the off-site record: a failed or late upload fails the site's offsite check", () => {
  const now = Date.parse("2026-12-02T06:00:00Z") / 1000;
  const rec = (over: Record<string, unknown>) =>
    JSON.stringify({
      site: "shop",
      lastAttempt: "2026-12-02T02:00:09Z",
      lastSuccess: "2026-12-02T02:00:09Z",
      lastError: null,
      ...over,
    });
  const text = (offsite?: string) =>
    [
      "### now",
      String(now),
      "### containers",
      "[]",
      "### stats",
      "### events",
      "### backups",
      "=== shop",
      JSON.stringify({
        site: "shop",
        lastAttempt: "2026-12-02T02:00:05Z",
        lastSuccess: "2026-12-02T02:00:05Z",
        lastError: null,
      }),
      ...(offsite ? ["=== shop offsite", offsite] : []),
      "### heal",
      "### memory",
      "### loadavg",
      "0.1 0.1 0.1 1/1 1",
      "### meminfo",
      "MemTotal: 4000000 kB",
      "MemAvailable: 1000000 kB",
      "### df",
      "### dockerdf",
      "### end",
      "",
    ].join("\n");
  const site = {
    site: "shop",
    roles: [],
    backupIntervalSeconds: 86400,
    backupDir: "shop",
    offsite: true,
    domains: [],
  };
  const check = (offsite?: string) =>
    judge(parseHostReport(text(offsite)), [site], [])
      .filter((c) => c.check === "offsite")
      .map((c) => [c.verdict, c.detail]);
  assert.deepEqual(check(rec({})), [["ok", "last complete upload 4.0 h ago (bound 36.0 h)"]]);
  assert.deepEqual(check(rec({ lastError: "cannot list offsite:b/shop: connection refused" })), [
    [
      "fail",
      "last complete upload 4.0 h ago (bound 36.0 h); last upload failed: cannot list offsite:b/shop: connection refused",
    ],
  ]);
  assert.deepEqual(check(rec({ lastSuccess: "2026-11-30T02:00:09Z" })), [
    ["fail", "last complete upload 2.2 days ago (bound 36.0 h)"],
  ]);
  assert.deepEqual(check(undefined), [
    ["fail", "no off-site upload has run yet (the backup timer runs it after each backup)"],
  ]);
  assert.deepEqual(check("{not json"), [
    ["fail", "no off-site upload has succeeded yet; last error: offsite.json is not valid JSON"],
  ]);
  // A stack without off-site copies has no such check.
  assert.deepEqual(
    judge(parseHostReport(text()), [{ ...site, offsite: false }], []).filter(
      (c) => c.check === "offsite",
    ),
    [],
  );
});
