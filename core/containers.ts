/** Settings every container the platform runs shares: restart policy, bounded logs, labels. */

export const RESTART_POLICY = "unless-stopped";
export const LOG_DRIVER = "json-file";
/** At most 3 x 10 MB of logs per container. */
export const LOG_OPTS = { "max-size": "10m", "max-file": "3" } as const;
export const MANAGED_BY = "agi-platform";
/** The label that names a container's site: the socket proxy filters Docker's lists by it. */
export const SITE_LABEL = "agi.site";

/** Docker labels: who manages the container, which site and which role it plays. */
export function containerLabels(site: string, role: string): { label: string; value: string }[] {
  return [
    { label: "agi.managed-by", value: MANAGED_BY },
    { label: "agi.role", value: role },
    { label: SITE_LABEL, value: site },
  ];
}

/**
 * Capabilities of Docker's default set that no platform container needs: NET_RAW (raw packets, so
 * spoofing on a shared bridge), MKNOD, SETFCAP, SETPCAP, SYS_CHROOT, AUDIT_WRITE. What images need to
 * start (CHOWN, SETUID, SETGID, DAC_OVERRIDE, FOWNER for entrypoints that drop to a user) stays.
 */
export const CAPABILITY_DROPS: readonly string[] = [
  "AUDIT_WRITE",
  "MKNOD",
  "NET_RAW",
  "SETFCAP",
  "SETPCAP",
  "SYS_CHROOT",
];

/** An app listening on a high port does not need to bind low ones either. */
export function appCapabilityDrops(port: number): string[] {
  return [...CAPABILITY_DROPS, ...(port >= 1024 ? ["NET_BIND_SERVICE"] : [])].sort();
}

/** Restart policy, bounded logs and the capabilities dropped, spread into every Container's args. */
export const CONTAINER_DEFAULTS: {
  readonly restart: string;
  readonly logDriver: string;
  readonly logOpts: Record<string, string>;
  readonly capabilities: { readonly drops: string[] };
} = {
  restart: RESTART_POLICY,
  logDriver: LOG_DRIVER,
  logOpts: { ...LOG_OPTS },
  capabilities: { drops: [...CAPABILITY_DROPS] },
};
