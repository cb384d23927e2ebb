/**
 * The host's own scheduled operations, as data: one timer every minute (memory samples and the
 * healing of apps that stay unhealthy, components/ops/ops-tick.sh) and one a day (the image prune,
 * components/ops/prune-images.sh), both systemd user units of the deploy user like the backups'.
 * Nothing resident and no container with the Docker socket. Pure: the Platform installs what this
 * returns.
 */
import type { HostSettings } from "../stacks/settings";
import { commandLine } from "./host";
import { scheduledUnits, type Units } from "./timers";

/** The scripts the host keeps in its ops directory, as named in components/ops/. */
export const OPS_SCRIPTS = ["ops-tick.sh", "prune-images.sh"] as const;

/**
 * Failed probes in a row before an unhealthy app is restarted. Docker calls a container unhealthy
 * after its `retries` (3 by default here) failed probes; 6 means it stayed unhealthy for three more
 * probes (30 s at the default 10 s interval), so one slow moment is not a restart.
 */
export const HEAL_FAILING_STREAK = 6;
/** Restarts per app container in any hour before healing stops and the status check fails. */
export const HEAL_MAX_RESTARTS_PER_HOUR = 3;
/** The image prune: daily at 06:30 UTC, after the default backups (02:00-03:59) and drills (04:00-05:59). */
export const PRUNE_SCHEDULE = "30 6 * * *";

/** Where a host keeps the ops scripts and their records. */
export interface OpsHost {
  readonly scriptDir: string;
  /** heal.log and memory.log (read by `npm run status`). */
  readonly stateDir: string;
}

export function opsHost(host: HostSettings): OpsHost {
  return { scriptDir: `${host.root}/bin/ops`, stateDir: `${host.root}/state` };
}

/**
 * The unit pairs of a host's operations: every minute, and the daily prune, which also keeps
 * `keepImages` (images the host's jobs run now and then, such as the off-site uploader).
 */
export function opsUnits(
  ops: OpsHost,
  keepImages: readonly string[] = [],
): { tick: Units; prune: Units } {
  return {
    tick: scheduledUnits(
      "agi-ops",
      "memory samples and healing of unhealthy apps",
      commandLine([
        "/bin/sh",
        `${ops.scriptDir}/ops-tick.sh`,
        ops.stateDir,
        String(HEAL_FAILING_STREAK),
        String(HEAL_MAX_RESTARTS_PER_HOUR),
      ]),
      "* * * * *",
    ),
    prune: scheduledUnits(
      "agi-prune",
      "removal of images nothing needs (rollback images kept)",
      commandLine([
        "/bin/sh",
        `${ops.scriptDir}/prune-images.sh`,
        ...keepImages.flatMap((image) => ["--keep", image]),
      ]),
      PRUNE_SCHEDULE,
    ),
  };
}
