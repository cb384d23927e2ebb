/** Settings every container the platform runs shares: restart policy, bounded logs, labels. */

export const RESTART_POLICY = "unless-stopped";
export const LOG_DRIVER = "json-file";
/** At most 3 x 10 MB of logs per container. */
export const LOG_OPTS = { "max-size": "10m", "max-file": "3" } as const;
export const MANAGED_BY = "agi-platform";

/** Docker labels: who manages the container, which site and which role it plays. */
export function containerLabels(site: string, role: string): { label: string; value: string }[] {
  return [
    { label: "agi.managed-by", value: MANAGED_BY },
    { label: "agi.role", value: role },
    { label: "agi.site", value: site },
  ];
}

/** Restart policy and bounded logs, spread into every Container's args. */
export const CONTAINER_DEFAULTS = {
  restart: RESTART_POLICY,
  logDriver: LOG_DRIVER,
  logOpts: { ...LOG_OPTS },
} as const;
