/** Memory quantities in Kubernetes-style binary units ("512Mi", "4Gi"), as site files and stack settings write them. */
export const MEMORY_PATTERN = /^([1-9][0-9]*)(Mi|Gi)$/;

/** "512Mi" -> 512, "2Gi" -> 2048 (MiB). Throws on anything else; callers validate first. */
export function toMiB(quantity: string): number {
  const m = MEMORY_PATTERN.exec(quantity);
  if (!m) throw new Error(`not a memory quantity: ${JSON.stringify(quantity)}`);
  return Number(m[1]) * (m[2] === "Gi" ? 1024 : 1);
}

/** 512 -> "512Mi", 2048 -> "2Gi", 1536 -> "1536Mi". */
export function formatMiB(mib: number): string {
  return mib !== 0 && mib % 1024 === 0 ? `${mib / 1024}Gi` : `${mib}Mi`;
}

/** Go-style durations as Docker healthchecks take them: "10s", "1m30s", "500ms". */
export const DURATION_PATTERN = /^(?:[0-9]+(?:ms|s|m|h))+$/;

/** "1m30s" -> 90, "500ms" -> 0.5 (seconds). Throws on anything else; callers validate first. */
export function toSeconds(duration: string): number {
  if (!DURATION_PATTERN.test(duration))
    throw new Error(`not a duration: ${JSON.stringify(duration)}`);
  const unit: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };
  let total = 0;
  for (const m of duration.matchAll(/([0-9]+)(ms|s|m|h)/g)) total += Number(m[1]) * unit[m[2]];
  return total;
}

/** Stable 32-bit FNV-1a hash, used to spread per-site schedules deterministically. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
