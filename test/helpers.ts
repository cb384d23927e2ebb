/** Shared test fixtures: valid site files to mutate, and temporary project directories. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as net from "node:net";
import * as path from "node:path";
import { exampleSettings, writeProject } from "../scripts/fixtures";
import { formatProblem, validateAll, type SiteEntry } from "../core/validate";
import { StackSettingsSchema, type StackSettings } from "../stacks/settings";
import type { Io } from "../scripts/args";

export const ROOT = path.resolve(__dirname, "..");

/** A valid website, as a site file would write it. */
export function website(
  name = "shop",
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    name,
    kind: "website",
    domains: [`${name}.example.com`, `www.${name}.example.com`],
    app: { image: `ghcr.io/acme/${name}:1.2.3`, port: 3000 },
    database: { mode: "dedicated" },
    dns: { provider: "cloudflare", zone: "example.com" },
    ...overrides,
  };
}

/** A valid routed service. */
export function service(
  name = "tool",
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    name,
    kind: "service",
    domains: [`${name}.example.com`],
    upstream: { host: name, port: 8080 },
    dns: { provider: "cloudflare", zone: "example.com" },
    ...overrides,
  };
}

/** Stack settings for tests: one host (4Gi, 4 CPUs) with a shared cluster, Cloudflare DNS. */
export const settings = (overrides: Record<string, unknown> = {}) => exampleSettings(overrides);
export { writeProject };

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `agi-${prefix}-`));
}

/** `count` distinct TCP ports free on loopback right now (all held until all are picked). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const srv = net.createServer();
          srv.once("error", reject);
          srv.listen(0, "127.0.0.1", () => resolve(srv));
        }),
    ),
  );
  const ports = servers.map((srv) => (srv.address() as net.AddressInfo).port);
  await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
  return ports;
}

/** A TCP port free on loopback right now. */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0];
}

/** What a command printed and returned, run in this process. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command's exported `main(argv, io)` in this process, as `npm run <command>` would run it in
 * `cwd` with `env`, capturing what it prints: no terminal, child processes' output captured too.
 */
export async function runInProcess(
  main: (argv: string[], io: Io) => number | Promise<number>,
  argv: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CommandResult> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    cwd: options.cwd ?? ROOT,
    env: options.env ?? process.env,
    interactive: false,
    inheritStdio: false,
  });
  return { code, stdout, stderr };
}

/** A site file's value as the loader gives it, shown as `sites/<name>.ts`. */
export const siteEntry = (value: Record<string, unknown>): SiteEntry => ({
  file: `sites/${String(value.name)}.ts`,
  value,
});

/** Every problem `validate` finds in these site values against one stack (default: `settings()`). */
export function checkSites(
  values: Record<string, unknown>[],
  stack: StackSettings = StackSettingsSchema.parse(settings()),
): string[] {
  return validateAll(values.map(siteEntry), [
    { file: "Pulumi.test.yaml", settings: stack },
  ]).problems.map(formatProblem);
}
