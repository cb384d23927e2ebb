/**
 * Cloudflare's published address ranges: its proxies connect to the origin from these and only
 * these. Kept as data, with where it comes from; `npm test` checks that every entry parses as an
 * aligned CIDR block. Refresh: `curl https://www.cloudflare.com/ips-v4 https://www.cloudflare.com/ips-v6`,
 * replace the lists, update `listed`, and deploy (the edge's Caddyfile changes, nothing else).
 */

export const CLOUDFLARE_RANGES = {
  sources: ["https://www.cloudflare.com/ips-v4", "https://www.cloudflare.com/ips-v6"],
  /**
   * When the lists below were written down. Written without network access to the sources; checked
   * entry by entry against published copies of both files dated June 2024 (15 IPv4 and 7 IPv6
   * blocks, the same set), the lists Cloudflare has published since 104.16.0.0/13 and 104.24.0.0/14
   * replaced 104.16.0.0/12 in 2023. Compare with the sources before a deploy that relies on them.
   */
  listed: "2026-12-02",
  ipv4: [
    "173.245.48.0/20",
    "103.21.244.0/22",
    "103.22.200.0/22",
    "103.31.4.0/22",
    "141.101.64.0/18",
    "108.162.192.0/18",
    "190.93.240.0/20",
    "188.114.96.0/20",
    "197.234.240.0/22",
    "198.41.128.0/17",
    "162.158.0.0/15",
    "104.16.0.0/13",
    "104.24.0.0/14",
    "172.64.0.0/13",
    "131.0.72.0/22",
  ],
  ipv6: [
    "2400:cb00::/32",
    "2606:4700::/32",
    "2803:f800::/32",
    "2405:b500::/32",
    "2405:8100::/32",
    "2a06:98c0::/29",
    "2c0f:f248::/32",
  ],
} as const;

/** Every Cloudflare range, IPv4 first: what the edge trusts and lets in for proxied sites. */
export function cloudflareRanges(): string[] {
  return [...CLOUDFLARE_RANGES.ipv4, ...CLOUDFLARE_RANGES.ipv6];
}

/** The problem with a CIDR block, or undefined: a dotted quad or IPv6 address, a prefix length, no host bits. */
export function cidrProblem(cidr: string): string | undefined {
  const m = /^([0-9a-f:.]+)\/([0-9]{1,3})$/.exec(cidr);
  if (!m) return "is not address/prefix";
  const bits = addressBits(m[1]);
  if (!bits) return "has no valid IPv4 or IPv6 address";
  const prefix = Number(m[2]);
  if (prefix > bits.length) return `has a prefix longer than ${bits.length}`;
  if (/1/.test(bits.slice(prefix))) return "has host bits set beyond its prefix";
  return undefined;
}

/** Whether `address` (IPv4 or IPv6) lies in one of the CIDR blocks `ranges`. */
export function inRanges(address: string, ranges: readonly string[]): boolean {
  const bits = addressBits(address.toLowerCase());
  if (!bits) return false;
  return ranges.some((r) => {
    const [base, prefix] = r.split("/");
    const b = addressBits(base);
    return (
      b !== undefined && b.length === bits.length && b.slice(0, +prefix) === bits.slice(0, +prefix)
    );
  });
}

/** The address as a string of bits (32 or 128), or undefined when it is not one. */
function addressBits(address: string): string | undefined {
  if (address.includes(".")) {
    const parts = address.split(".");
    if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && +p < 256))
      return undefined;
    return parts.map((p) => Number(p).toString(2).padStart(8, "0")).join("");
  }
  const halves = address.split("::");
  if (halves.length > 2) return undefined;
  const groups = halves.map((h) => (h === "" ? [] : h.split(":")));
  if (!groups.flat().every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined;
  const count = groups.flat().length;
  if (halves.length === 1 ? count !== 8 : count > 7) return undefined;
  const all =
    halves.length === 1
      ? groups[0]
      : [...groups[0], ...Array<string>(8 - count).fill("0"), ...groups[1]];
  return all.map((g) => parseInt(g, 16).toString(2).padStart(16, "0")).join("");
}
