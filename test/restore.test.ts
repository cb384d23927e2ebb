/**
 * `npm run restore`: refusals before anything is touched, and the whole path on a real PostgreSQL 15
 * (and over a real SSH connection with a pinned host key); `npm run tunnel` over the same connection. The Docker CLI on the "host" is a
 * stand-in that runs the PostgreSQL tools of each `docker exec` against the test server (and the
 * shared-mode drill in a directory of its own), and logs every call, so the order stop → restore →
 * start can be checked.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ids, postgresAvailable, psqlOverTcp, startPostgres, type PgServer } from "./pg-server";
import { ROOT, freePorts, runInProcess, settings, tempDir, website, writeProject } from "./helpers";
import { main as restoreMain } from "../scripts/restore";
import { main as tunnelMain } from "../scripts/tunnel";
import { SSHD, startSshd, type Sshd } from "./sshd";

const skip =
  !postgresAvailable() && !process.env.CI ? "PostgreSQL 15 binaries not installed" : false;
const sshSkip = skip || (!fs.existsSync(SSHD) && !process.env.CI ? "no OpenSSH server" : false);
const RESTORE = path.join(ROOT, "scripts", "restore.ts");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");
const BACKUP = path.join(ROOT, "components", "backup", "pg-backup.sh");
const PASSWORD = "test-only-restore-password";
const APPS = ["0a1b2c3d4e5f", "6a7b8c9d0e1f"];

let pg: PgServer;
let fake: string;
let backups: string;
let log: string;
/** The "container's" temporary directory: every run must leave it empty. */
let scratchTmp: string;

/**
 * The Docker CLI stand-in; its settings come from fake.env beside it (SSH passes no environment).
 * `docker exec` of a PostgreSQL tool runs it here against the test server; the short-lived
 * container's file copies and its drill run in a directory of the stand-in.
 */
const FAKE_DOCKER = `#!/bin/bash
set -eu
. "$(dirname "$0")/fake.env"
echo "$*" >>"$FAKE_LOG"
case $1 in
inspect)
  # The shared cluster's container: its image (the backup job), its address (the tunnel).
  [ "\${!#}" = "$FAKE_CLUSTER" ] || { echo "Error: No such object: \${!#}" >&2; exit 1; }
  case " $* " in *.Image*) echo sha256:0123456789abcdef ;; *) echo "$FAKE_ADDRESS" ;; esac ;;
rm) ;;
run) echo 0123456789ab ;;
ps)
  # Only the site's app containers match both filters.
  case " $* " in *" label=agi.site=$FAKE_SITE "*" label=agi.role=app "*) printf '%s\\n' $FAKE_APPS ;; esac ;;
stop | start) ;;
exec)
  shift
  while [ "$#" -gt 0 ]; do case $1 in -i) shift ;; -u | -e) shift 2 ;; *) break ;; esac; done
  case " $FAKE_CONTAINERS " in *" $1 "*) ;; *) echo "Error: No such container: $1" >&2; exit 1 ;; esac
  shift
  export PGHOST PGPORT PGUSER PGPASSFILE TMPDIR
  # The database container's volume, where a parallel restore stages the dump: a directory here.
  n=$#
  for a in "$@"; do
    case $a in /var/lib/postgresql/data/*) a="$FAKE_VOLUME/\${a#/var/lib/postgresql/data/}" ;; esac
    set -- "$@" "$a"
  done
  shift "$n"
  if [ "$1" = sh ] && [ "$2" = -c ]; then
    case $3 in *drill*) mkdir -p "$FAKE_DRILL/daily"; cat >"$FAKE_DRILL/daily/$5" ;; *restore.dump*) exec "$@" ;; *) cat >/dev/null ;; esac
    exit 0
  fi
  if [ "$1" = sh ] && [ "$2" = /opt/agi/pg-restore.sh ]; then
    shift 3
    trap 'rm -rf "$FAKE_DRILL"' EXIT
    # A container sees none of the caller's environment.
    env -u PG_EXEC sh "$FAKE_SCRIPTS/pg-restore.sh" "$FAKE_DRILL" "$@"
    exit $?
  fi
  # A restore held until the test releases it (a line written to the FIFO FAKE_HOLD).
  case " $* " in *" --single-transaction "* | *" --jobs "*) if [ -n "\${FAKE_HOLD:-}" ]; then read -r _ <"$FAKE_HOLD"; fi ;; esac
  exec "$@" ;;
*) echo "fake docker: unexpected $1" >&2; exit 1 ;;
esac
`;

function writeFakeEnv(over: Record<string, string> = {}): void {
  const env: Record<string, string> = {
    FAKE_LOG: log,
    FAKE_SCRIPTS: scriptDir(),
    FAKE_DRILL: path.join(scratchTmp, "drill"),
    FAKE_VOLUME: fakeVolume,
    FAKE_SITE: "shop",
    FAKE_CLUSTER: "shared-pg",
    FAKE_ADDRESS: "",
    FAKE_CONTAINERS: "shop-db shop-backup",
    FAKE_APPS: APPS.join(" "),
    PGHOST: "127.0.0.1",
    PGPORT: String(pg.port),
    PGUSER: "postgres",
    PGPASSFILE: path.join(fake, "pgpass"),
    TMPDIR: scratchTmp,
    ...over,
  };
  fs.writeFileSync(
    path.join(fake, "fake.env"),
    Object.entries(env)
      .map(([k, v]) => `${k}='${v}'\n`)
      .join(""),
  );
  fs.writeFileSync(log, "");
}

/** The database container's volume as the stand-in shows it (a parallel restore stages its dump there). */
const fakeVolume = tempDir("restore-volume");
/** The "host"'s root: the installed scripts, the backups, the secrets (readable by the SSH test's user). */
const hostRoot = tempDir("restore-root");
fs.chmodSync(hostRoot, 0o755);
const scriptDir = () => path.join(hostRoot, "bin", "backup");
const sharedDatabase = {
  container: "shared-pg",
  port: 5432,
  adminAddress: "127.0.0.1",
  adminPort: 15432,
  adminPasswordSecret: "sharedDbPassword",
};

const localStack = settings({
  hosts: [
    {
      name: "local",
      publicIp: "127.0.0.1",
      docker: { connection: "socket", socket: "unix:///var/run/docker.sock" },
      capacity: { memory: "4Gi", cpus: 2 },
      root: hostRoot,
      sharedDatabase,
    },
  ],
  dns: { provider: "none" },
});
const shop = (mode: "dedicated" | "shared", name = "shop") =>
  website("shop", { database: { mode, name } });

function project(stack: Record<string, unknown>, sites: Record<string, unknown>[]): string {
  return writeProject("local", stack, sites).root;
}

/** `npm run restore` in a project, with the stand-in Docker CLI first on PATH: its main, in process. */
function restore(root: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return runInProcess(restoreMain, args, {
    cwd: root,
    env: { ...process.env, PATH: `${fake}:${process.env.PATH}`, TMPDIR: scratchTmp, ...env },
  });
}

/** The same through the real entry point (tsx, a process of its own). */
function restoreSpawned(root: string, args: string[]) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(TSX, [RESTORE, ...args], {
      cwd: root,
      env: { ...process.env, PATH: `${fake}:${process.env.PATH}`, TMPDIR: scratchTmp },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdin.end();
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

const calls = () => fs.readFileSync(log, "utf8").trim().split("\n").filter(Boolean);
/**
 * The calls as steps: each `docker exec` reduced to its container and what it runs (a pg_restore
 * with its kind: check, drill or restore), repeats of the same step folded.
 */
const steps = (list: string[] = calls()) => {
  const out: string[] = [];
  for (const c of list) {
    let step = c.split(" ")[0] === "run" ? "run" : c;
    const m = /^exec (?:-i )?(?:-[ue] \S+ )*(\S+) (.*)$/.exec(c);
    if (m) {
      const [, container, cmd] = m;
      const tool = cmd.split(" ")[0];
      const kind = /--single-transaction|--jobs/.test(cmd)
        ? " into"
        : cmd.includes("--no-owner")
          ? " scratch"
          : cmd.includes("--private-server")
            ? " private drill"
            : "";
      const shell = cmd.includes("restore.dump") ? "stage" : cmd.split(" ")[1];
      step = `exec ${container} ${tool === "sh" ? shell : tool}${kind}`;
    }
    if (out.at(-1) !== step) out.push(step);
  }
  return out;
};
/**
 * The index of the background drop of the replaced database among the calls: the second `psql` call
 * that names it (the first is the swap), waited for.
 */
async function replacedDropCall(): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const named = calls()
      .map((c, i) => [c, i] as const)
      .filter(([c]) => c.includes(" -v replaced=agi_replaced_"));
    if (named.length >= 2) return named[1][1];
    assert.ok(Date.now() < deadline, `no drop of the replaced data in ${calls().join(" | ")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
/** What runs left in the temporary directory (tsx keeps its compile cache there: not ours). */
const leftovers = () => fs.readdirSync(scratchTmp).filter((f) => !f.startsWith("tsx-"));

before(() => {
  if (skip) return;
  return (async () => {
    pg = await startPostgres();
    pg.sql("postgres", `ALTER ROLE postgres PASSWORD '${PASSWORD}'`);
    pg.sql("postgres", "CREATE DATABASE shop");
    pg.sql(
      "shop",
      `CREATE TABLE orders (id serial PRIMARY KEY, total numeric(10,2), note text);
       INSERT INTO orders (total, note) SELECT i * 1.5, 'order ' || i FROM generate_series(1, 1200) i;
       CREATE TABLE "odd name" (x int); INSERT INTO "odd name" VALUES (1), (2);`,
    );
    fake = tempDir("fake-docker");
    fs.chmodSync(fake, 0o755);
    fs.writeFileSync(path.join(fake, "docker"), FAKE_DOCKER, { mode: 0o755 });
    // The container's /opt/agi: copies of the scripts, as the container gets them by upload (and
    // readable by the SSH test's deploy user wherever the checkout lives).
    // The scripts as the Platform installs them on the host.
    fs.mkdirSync(scriptDir(), { recursive: true, mode: 0o755 });
    for (const f of fs.readdirSync(path.join(ROOT, "components", "backup"))) {
      fs.copyFileSync(path.join(ROOT, "components", "backup", f), path.join(scriptDir(), f));
      fs.chmodSync(path.join(scriptDir(), f), 0o755);
    }
    fs.chmodSync(path.join(hostRoot, "bin"), 0o755);
    fs.writeFileSync(path.join(fake, "pw"), PASSWORD, { mode: 0o600 });
    fs.writeFileSync(path.join(fake, "pgpass"), `*:*:*:*:${PASSWORD}\n`, { mode: 0o600 });
    fs.mkdirSync(path.join(hostRoot, "secrets"), { mode: 0o700 });
    fs.writeFileSync(path.join(hostRoot, "secrets", "shop.pgpass"), `*:*:*:*:${PASSWORD}\n`, {
      mode: 0o600,
    });
    log = path.join(fake, "calls.log");
    scratchTmp = tempDir("restore-tmp");
    fs.chmodSync(scratchTmp, 0o1777);
    fs.mkdirSync(path.join(hostRoot, "backups"), { mode: 0o755 });
    backups = path.join(hostRoot, "backups", "shop");
    fs.mkdirSync(backups, { mode: 0o700 });
    const r = spawnSync("sh", [BACKUP], {
      env: {
        ...process.env,
        SITE: "shop",
        BACKUP_DIR: backups,
        PGHOST: "127.0.0.1",
        PGPORT: String(pg.port),
        PGUSER: "postgres",
        PGDATABASE: "shop",
        PGPASSWORD_FILE: path.join(fake, "pw"),
        BACKUP_NOW: "2026-11-20T02:30:00Z",
        BACKUP_GLOBALS: "no",
      },
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
  })();
});

after(async () => {
  if (pg) await pg.stop();
  for (const d of [fake, hostRoot, scratchTmp, fakeVolume])
    if (d) fs.rmSync(d, { recursive: true, force: true });
});

const DUMP = "daily/shop-20261120T023000Z.dump";

test("refusals name the stack, the site or the option, and touch nothing", async () => {
  const cases: [string[], number, RegExp][] = [
    [
      ["--stack", "staging", "--site", "stepperslife"],
      1,
      /no stack "staging": .*stacks: local, prod/,
    ],
    [["--stack", "prod", "--site", "nosuch"], 1, /no site "nosuch": there is no sites\/nosuch\.ts/],
    [["--stack", "prod", "--site", "ollama"], 1, /sites\/ollama\.ts: ollama has no database/],
    [
      ["--stack", "prod", "--site", "stepperslife", "--backup", "../etc/x.dump"],
      2,
      /not a dump name/,
    ],
    [["--stack", "prod", "--site", "stepperslife", "--latest", "--backup", DUMP], 2, /exclude/],
    [["--site", "stepperslife"], 2, /--stack is required/],
    // Not a terminal and no --yes: a real restore is refused before any connection.
    [
      ["--stack", "prod", "--site", "stepperslife"],
      1,
      /stepperslife on vps1 \(stack prod\) needs --yes/,
    ],
  ];
  for (const [args, status, message] of cases) {
    const r = await runInProcess(restoreMain, args, { cwd: ROOT });
    assert.equal(r.code, status, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    assert.equal(r.stdout, "");
  }
  // Bad command lines: the problem, then the usage, exactly.
  const usage =
    "usage: npm run restore -- --stack NAME --site NAME [--backup FILE | --latest] [--into-scratch] [--yes] [--sites DIR]\n" +
    "       [--from offsite --identity FILE]   the dump from off-site storage, decrypted on the host with the age identity in FILE\n" +
    "       [--from offsite --list]            the site's off-site dumps\n";
  const usageCases: [string[], string][] = [
    [["--site", "stepperslife"], "--stack is required\n"],
    [["--stack", "prod"], "--site is required\n"],
    [["--stack", "prod", "--site", "x", "--frobnicate"], "Unknown option '--frobnicate'\n"],
    [
      ["--stack", "prod", "--site", "x", "--latest", "--backup", DUMP],
      "--backup and --latest exclude each other\n",
    ],
  ];
  for (const [args, message] of usageCases) {
    const r = await runInProcess(restoreMain, args, { cwd: ROOT });
    assert.deepEqual(r, { code: 2, stdout: "", stderr: `${message}${usage}` }, args.join(" "));
  }
  assert.deepEqual(await runInProcess(restoreMain, ["--help"], { cwd: ROOT }), {
    code: 0,
    stdout: usage,
    stderr: "",
  });
});

for (const mode of ["dedicated", "shared"] as const) {
  test(
    `restore drill (${mode}): verified dump restored into a throwaway database, app untouched`,
    { skip },
    async () => {
      writeFakeEnv();
      const root = project(localStack, [shop(mode)]);
      const r = await restore(root, ["--stack", "local", "--site", "shop", "--into-scratch"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /restore: daily\/shop-20261120T023000Z\.dump is verified/);
      assert.match(
        r.stdout,
        /restore drill: ok: shop-20261120T023000Z\.dump restores, 2 tables match/,
      );
      // Dedicated: the tools run in the site's database container. Shared: in a short-lived
      // container of the cluster's image; the drill in a throwaway server there, not the cluster.
      if (mode === "dedicated") {
        assert.deepEqual(steps(), [
          "exec shop-db pg_restore",
          "exec shop-db psql",
          "exec shop-db pg_restore scratch",
          "exec shop-db psql",
        ]);
      } else {
        const all = calls();
        assert.ok(
          all.some((c) => c.startsWith("run -d --rm --name shop-backup --network agi-network")),
          all.join("\n"),
        );
        assert.ok(all.includes("inspect --format {{.Image}} shared-pg"));
        assert.equal(
          steps().filter((x) => x.endsWith("private drill")).length,
          1,
          steps().join("\n"),
        );
        assert.equal(all.at(-1), "rm -f shop-backup", "the short-lived container goes");
      }
      assert.equal(
        pg.sql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'restore_drill%'"),
        "0",
      );
      assert.deepEqual(leftovers(), [], "no work directory or throwaway server left behind");
    },
  );
}

test(
  "restore (end to end): the app is stopped, the database replaced and checked, the app started",
  { skip },
  async () => {
    writeFakeEnv();
    pg.sql(
      "shop",
      "INSERT INTO orders (total, note) SELECT 1, 'written after the dump' FROM generate_series(1, 77)",
    );
    const root = project(localStack, [shop("dedicated")]);
    // The real entry point: its exit code, and the host's output passed straight through.
    const r = await restoreSpawned(root, [
      "--stack",
      "local",
      "--site",
      "shop",
      "--backup",
      DUMP,
      "--yes",
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /restore: ok: shop-20261120T023000Z\.dump restored into shop, 2 tables match/,
    );
    assert.equal(pg.sql("shop", "SELECT count(*) FROM orders"), "1200");
    // The replaced data is dropped in the background after the swap (the second psql call with the
    // replaced database's name): it may come at any point after the swap, so it is set aside here.
    const drop = await replacedDropCall();
    assert.deepEqual(steps(calls().filter((_, i) => i !== drop)), [
      "exec shop-db pg_restore",
      "ps --quiet --filter label=agi.site=shop --filter label=agi.role=app",
      `stop --time 30 ${APPS.join(" ")}`,
      "exec shop-db pg_restore",
      // The parallel restore: a new database, the dump staged in the volume, restored, counted,
      // swapped in; then the staged copy removed.
      "exec shop-db psql",
      "exec shop-db stage",
      "exec shop-db pg_restore into",
      "exec shop-db psql",
      "exec shop-db rm",
      `start ${APPS.join(" ")}`,
    ]);
    assert.deepEqual(fs.readdirSync(fakeVolume), [], "the staged dump is gone");
  },
);

test("a failed restore still starts the app again and exits 1", { skip }, async () => {
  writeFakeEnv();
  // The site's database does not exist on the server: the restore fails after the app was stopped.
  const root = project(localStack, [shop("dedicated", "shop_gone")]);
  const r = await restore(root, ["--stack", "local", "--site", "shop", "--latest", "--yes"]);
  assert.equal(r.code, 1);
  // The detached part's log comes back through the caller's output.
  assert.match(
    r.stdout,
    /restore: cannot connect to shop_gone: .*database "shop_gone" does not exist/,
  );
  assert.match(r.stdout, /restore: started the app again/);
  // Every call, in order: stop, then the restore (which fails), then start, each of them present.
  assert.deepEqual(steps(), [
    "exec shop-db pg_restore",
    "ps --quiet --filter label=agi.site=shop --filter label=agi.role=app",
    `stop --time 30 ${APPS.join(" ")}`,
    "exec shop-db pg_restore",
    "exec shop-db psql",
    `start ${APPS.join(" ")}`,
  ]);
  assert.deepEqual(leftovers(), []);
});

test(
  "a lost connection mid-restore: the host finishes the restore and starts the app",
  { skip },
  async () => {
    // The restore is held (the stand-in waits on a FIFO) until the follower has been killed.
    const hold = path.join(tempDir("restore-hold"), "hold");
    assert.equal(spawnSync("mkfifo", ["-m", "0666", hold]).status, 0);
    writeFakeEnv({ FAKE_HOLD: hold });
    pg.sql(
      "shop",
      "INSERT INTO orders (total, note) SELECT 1, 'lost connection' FROM generate_series(1, 5)",
    );
    // The host script alone, as the SSH session runs it; killed (like a dropped session) once the
    // app is stopped and the restore has begun.
    const words = [
      path.join(scriptDir(), "site-backup.sh"),
      "--latest",
      "--into",
      "site=shop",
      "database=shop",
      `dir=${backups}`,
      "retention=7:4:12",
      "dedicated=shop-db",
    ];
    const host = spawn("sh", ["-s", "--", ...words], {
      env: { ...process.env, PATH: `${fake}:${process.env.PATH}`, TMPDIR: scratchTmp },
      stdio: ["pipe", "ignore", "ignore"],
    });
    host.stdin.end(fs.readFileSync(path.join(ROOT, "components", "backup", "host-restore.sh")));
    const until = async (what: string) => {
      const deadline = Date.now() + 30_000;
      while (!calls().some((c) => c.startsWith(what) || c.includes(` ${what} `))) {
        assert.ok(Date.now() < deadline, `no "${what}" in ${calls().join(" | ")}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await until("--jobs");
    host.kill("SIGKILL");
    await new Promise((r) => host.once("exit", r));
    fs.writeFileSync(hold, "go\n");
    await until("start");
    const drop = await replacedDropCall();
    assert.equal(
      calls()
        .filter((_, i) => i !== drop)
        .at(-1),
      `start ${APPS.join(" ")}`,
    );
    assert.equal(pg.sql("shop", "SELECT count(*) FROM orders"), "1200", "the restore completed");
    // The run's directory (log and status) stays behind for the operator when nobody followed it.
    const kept = leftovers().filter((d) => d.startsWith("agi-restore."));
    assert.equal(kept.length, 1);
    assert.equal(fs.readFileSync(path.join(scratchTmp, kept[0], "status"), "utf8"), "0\n");
    assert.match(
      fs.readFileSync(path.join(scratchTmp, kept[0], "log"), "utf8"),
      /restore: ok: .* restored into shop/,
    );
    fs.rmSync(path.join(scratchTmp, kept[0]), { recursive: true });
  },
);

test("one restore per site at a time", { skip }, async () => {
  writeFakeEnv();
  const lock = path.join(scratchTmp, "agi-restore-shop.lock");
  fs.mkdirSync(lock);
  try {
    const root = project(localStack, [shop("dedicated")]);
    const r = await restore(root, ["--stack", "local", "--site", "shop", "--latest", "--yes"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /restore: another restore of shop is running/);
    assert.ok(!calls().some((c) => c.startsWith("stop")), "nothing stopped");
  } finally {
    fs.rmdirSync(lock);
  }
});

test("a damaged or missing dump is refused before the app is stopped", { skip }, async () => {
  writeFakeEnv();
  const bad = path.join(backups, "daily", "shop-20261121T023000Z");
  fs.copyFileSync(
    path.join(backups, `${DUMP.replace(/\.dump$/, "")}.manifest.json`),
    `${bad}.manifest.json`,
  );
  const data = fs.readFileSync(path.join(backups, DUMP));
  fs.writeFileSync(`${bad}.dump`, data.subarray(0, Math.floor(data.length / 2)));
  try {
    const root = project(localStack, [shop("dedicated")]);
    const r = await restore(root, ["--stack", "local", "--site", "shop", "--latest", "--yes"]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /restore: .*shop-20261121T023000Z\.dump fails verification, refusing it/,
    );
    // The checksum refuses it on the host, before any tool runs.
    assert.deepEqual(calls(), []);
    // A dump that does not exist: the same refusal point.
    writeFakeEnv();
    const gone = "daily/shop-20200101T000000Z.dump";
    const r2 = await restore(root, [
      "--stack",
      "local",
      "--site",
      "shop",
      "--backup",
      gone,
      "--yes",
    ]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /restore: no such dump: .*\/daily\/shop-20200101T000000Z\.dump/);
    assert.deepEqual(calls(), []);
  } finally {
    fs.rmSync(`${bad}.dump`);
    fs.rmSync(`${bad}.manifest.json`);
  }
});

test(
  "no database container, or no installed script: refused with what to do",
  { skip },
  async () => {
    const root = project(localStack, [shop("dedicated")]);
    writeFakeEnv({ FAKE_CONTAINERS: "other-db" });
    let r = await restore(root, ["--stack", "local", "--site", "shop", "--into-scratch"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /No such container: shop-db/);
    assert.ok(!calls().some((c) => c.startsWith("stop")), "nothing stopped");
    writeFakeEnv();
    fs.renameSync(path.join(scriptDir(), "site-backup.sh"), path.join(scriptDir(), "away"));
    try {
      r = await restore(root, ["--stack", "local", "--site", "shop", "--into-scratch"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /site-backup\.sh is not on this host; has the stack been deployed\?/);
      assert.deepEqual(calls(), []);
    } finally {
      fs.renameSync(path.join(scriptDir(), "away"), path.join(scriptDir(), "site-backup.sh"));
    }
  },
);

let sshd: Sshd | undefined;
let sshDir: string | undefined;
let agent: { sock: string; pid: string } | undefined;
after(() => {
  sshd?.stop();
  if (agent) spawnSync("kill", [agent.pid]);
  if (sshDir) fs.rmSync(sshDir, { recursive: true, force: true });
});

/**
 * The "host" over SSH, started once: sshd whose PATH finds the stand-in Docker CLI, and an agent
 * holding the deploy key. The deploy user is `postgres`, which exists here with a locked password:
 * under PAM, sshd leaves account checks to PAM, which lets keys in.
 */
async function sshHost(): Promise<{ sshd: Sshd; agent: { sock: string; pid: string } }> {
  if (!sshd || !agent) {
    sshDir = tempDir("restore-ssh");
    fs.chmodSync(sshDir, 0o755);
    sshd = await startSshd(sshDir, [
      "UsePAM yes",
      `SetEnv PATH=${fake}:/usr/local/bin:/usr/bin:/bin`,
    ]);
    const out = execFileSync("ssh-agent", ["-s", "-a", path.join(sshDir, "agent.sock")], {
      encoding: "utf8",
    });
    agent = { sock: path.join(sshDir, "agent.sock"), pid: /SSH_AGENT_PID=(\d+)/.exec(out)![1] };
    execFileSync("ssh-add", ["-q", sshd.clientKey], {
      env: { ...process.env, SSH_AUTH_SOCK: agent.sock },
    });
    // What the deploy user touches on the "host" (later runs truncate the log, keeping its owner).
    fs.writeFileSync(log, "");
    const { uid, gid } = ids("postgres");
    for (const f of [log, path.join(fake, "pw"), path.join(fake, "pgpass")])
      fs.chownSync(f, uid, gid);
    execFileSync("chown", ["-R", "postgres", backups, path.join(hostRoot, "secrets")]);
  }
  return { sshd, agent };
}

/** The SSH host as a stack names it: the deploy user `postgres`, the test server's pinned key. */
function sshHostSettings(sshd: Sshd, hostKey = sshd.hostKey): Record<string, unknown> {
  return {
    name: "vps1",
    publicIp: "203.0.113.10",
    docker: {
      connection: "ssh",
      user: "postgres",
      address: "127.0.0.1",
      port: sshd.port,
      hostKey,
    },
    capacity: { memory: "4Gi", cpus: 2 },
    root: hostRoot,
    sharedDatabase,
  };
}

test(
  "over SSH with the pinned host key: the shared-mode drill runs in a throwaway server",
  { skip: sshSkip },
  async () => {
    const { sshd, agent } = await sshHost();
    writeFakeEnv();
    const stack = settings({
      hosts: [sshHostSettings(sshd)],
    });
    const root = writeProject("prod", stack, [shop("shared")]).root;
    const r = await restore(root, ["--stack", "prod", "--site", "shop", "--into-scratch"], {
      SSH_AUTH_SOCK: agent.sock,
    });
    assert.equal(
      r.code,
      0,
      r.stderr + fs.readFileSync(path.join(sshDir as string, "sshd.log"), "utf8"),
    );
    assert.match(
      r.stderr,
      /restore: shop: the latest verified dump into a throwaway database \(restore drill\), over SSH to vps1/,
    );
    assert.match(
      r.stdout,
      /restore drill: ok: shop-20261120T023000Z\.dump restores, 2 tables match/,
    );
    assert.equal(steps().filter((x) => x.endsWith("private drill")).length, 1, steps().join("\n"));
    assert.deepEqual(leftovers(), [], "no work directory or throwaway server left behind");
    // The drill never created a database on the site's server.
    assert.equal(
      pg.sql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'restore_drill%'"),
      "0",
    );

    // A host key other than the pinned one stops the connection before anything runs.
    const wrong = writeProject(
      "prod",
      settings({
        hosts: [
          sshHostSettings(
            sshd,
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
          ),
        ],
      }),
      [shop("shared")],
    ).root;
    writeFakeEnv();
    const refused = await restore(wrong, ["--stack", "prod", "--site", "shop", "--into-scratch"], {
      SSH_AUTH_SOCK: agent.sock,
    });
    assert.equal(refused.code, 255);
    assert.match(refused.stderr, /Host key verification failed/);
    assert.deepEqual(calls(), []);
  },
);

test(
  "npm run tunnel: the shared cluster through SSH with the pinned key",
  { skip: sshSkip },
  async () => {
    const { sshd, agent } = await sshHost();
    // The host's `docker inspect` answers the cluster container's address.
    writeFakeEnv({ FAKE_ADDRESS: "127.0.0.1 " });
    const [adminPort] = await freePorts(1);
    const stack = settings({
      hosts: [
        {
          ...sshHostSettings(sshd),
          sharedDatabase: {
            container: "shared-pg",
            port: pg.port,
            adminAddress: "127.0.0.1",
            adminPort,
            adminPasswordSecret: "sharedDbPassword",
          },
        },
      ],
    });
    const root = writeProject("prod", stack, [shop("shared")]).root;
    const env = { ...process.env, SSH_AUTH_SOCK: agent.sock };
    // The real entry point once (its exit code and output); the second run in process.
    const r = spawnSync(TSX, [path.join(ROOT, "scripts", "tunnel.ts"), "--stack", "prod"], {
      cwd: root,
      encoding: "utf8",
      env,
    });
    assert.equal(r.status, 0, r.stderr);
    const m = new RegExp(
      `^tunnel: 127\\.0\\.0\\.1:${adminPort} -> vps1 shared-pg \\(127\\.0\\.0\\.1:${pg.port}\\), pid (\\d+)\\n$`,
    ).exec(r.stdout);
    assert.ok(m, r.stdout);
    const pid = Number(m[1]);
    try {
      // The cluster answers through the tunnel, with its password, as the provider will use it.
      const q = psqlOverTcp(adminPort, "postgres", PASSWORD, "postgres", "SHOW port");
      assert.equal(q.status, 0, q.stderr);
      assert.equal(q.stdout.trim(), String(pg.port));
      // A second run finds the port taken and says so.
      const again = await runInProcess(tunnelMain, ["--stack", "prod"], { cwd: root, env });
      assert.deepEqual(again, {
        code: 1,
        stdout: "",
        stderr: `tunnel: 127.0.0.1:${adminPort} is already in use here; close what holds it\n`,
      });
    } finally {
      process.kill(pid);
    }
  },
);
