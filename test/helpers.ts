/** Shared test fixtures: valid site files to mutate, and temporary project directories. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { stringify } from "yaml";

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

/** Stack settings for tests: one host with a shared cluster, Cloudflare DNS. */
export function settings(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    hosts: [
      {
        name: "vps1",
        publicIp: "203.0.113.10",
        docker: { connection: "ssh", user: "deploy", address: "203.0.113.10" },
        capacity: { memory: "4Gi", cpus: 4 },
        sharedDatabase: {
          container: "shared-pg",
          adminAddress: "127.0.0.1",
          adminPort: 15432,
          adminPasswordSecret: "sharedDbPassword",
        },
      },
    ],
    edge: { acmeEmail: "ops@example.com" },
    dns: { provider: "cloudflare" },
    ...overrides,
  };
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `agi-${prefix}-`));
}

/** Writes a project root: Pulumi.<stack>.yaml with the settings, and sites/<name>.ts per site. */
export function writeProject(
  stack: string,
  stackSettings: Record<string, unknown>,
  sites: Record<string, unknown>[],
): { root: string; sitesDir: string } {
  const root = tempDir("project");
  fs.writeFileSync(
    path.join(root, `Pulumi.${stack}.yaml`),
    stringify({ config: { "agi-platform:settings": stackSettings } }),
  );
  const sitesDir = path.join(root, "sites");
  fs.mkdirSync(sitesDir);
  for (const s of sites) {
    fs.writeFileSync(
      path.join(sitesDir, `${String(s.name)}.ts`),
      `export default ${JSON.stringify(s, null, 2)};\n`,
    );
  }
  return { root, sitesDir };
}
