/**
 * Scheduled work on a host without a resident container: a systemd user unit pair (a oneshot
 * `.service` and its `.timer`) of the deploy user per job, generated here as text, and the command
 * lines that install and remove them. The timer's calendar is translated from the one cron grammar
 * (core/cron.ts). Pure: the components install what this returns.
 */
import { cronSets } from "./cron";
import { backupHostDir, commandLine, type HostTarget } from "./host";
import { databaseName, type WebsiteSite } from "./site";
import { PLATFORM_NETWORK, databaseRoles, siteNames } from "./names";
import type { HostSettings, StackSettings } from "../stacks/settings";

const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/** A field's values for a calendar: `*` when they are the whole range, else an explicit list. */
function calendarField(values: number[], lo: number, hi: number, pad = 2): string {
  if (values.length === hi - lo + 1) return "*";
  return values.map((v) => String(v).padStart(pad, "0")).join(",");
}

/**
 * The `OnCalendar=` values (systemd.time(7)) that fire exactly when the cron schedule does, in UTC.
 * Each field is expanded to its values; cron's "either day" rule (both day fields restricted) becomes
 * two calendars, one per day field, since one systemd calendar requires all its parts to match.
 */
export function onCalendar(schedule: string): string[] {
  const s = cronSets(schedule);
  const time = `${calendarField(s.hours, 0, 23)}:${calendarField(s.minutes, 0, 59)}:00 UTC`;
  const month = calendarField(s.months, 1, 12);
  const day = calendarField(s.days, 1, 31);
  const weekdays =
    s.weekdays.length === 7 ? "" : `${s.weekdays.map((d) => WEEKDAYS[d]).join(",")} `;
  if (s.eitherDay) return [`*-${month}-${day} ${time}`, `${weekdays}*-${month}-* ${time}`];
  return [`${weekdays}*-${month}-${day} ${time}`];
}

/** Where a host keeps the backup job: its scripts, the timers' unit files and the job's secrets. */
export interface JobHost {
  readonly target: HostTarget;
  /** Directory of the installed backup scripts (site-backup.sh and what it runs). */
  readonly scriptDir: string;
  /** Directory of the generated unit files (linked into the deploy user's systemd). */
  readonly unitDir: string;
  /** Directory of the jobs' secret files (0700). */
  readonly secretDir: string;
  /** The shared cluster as the job reaches it, when the host has one. */
  readonly shared?: { readonly container: string; readonly port: number };
  /** Off-site copies, when the stack declares them. */
  readonly offsite?: OffsiteJob;
}

/** How the host's backup jobs copy their dumps off-site (components/backup/offsite.sh). */
export interface OffsiteJob {
  /** bucket[/prefix] on the remote. */
  readonly path: string;
  /** The age public key the dumps are encrypted to. */
  readonly recipient: string;
  readonly retention: { readonly daily: number; readonly weekly: number; readonly monthly: number };
  /** The uploader's environment file on the host (0600): the remote and its credentials. */
  readonly envFile: string;
  /** The uploader image (rclone). */
  readonly image: string;
}

/** The backup job's places on a host, and its off-site copies when the stack declares them. */
export function jobHost(
  host: HostSettings,
  target: HostTarget,
  stack?: {
    readonly offsite?: StackSettings["offsite"];
    readonly images: { readonly uploader: string };
  },
): JobHost {
  const secretDir = `${host.root}/secrets`;
  const o = stack?.offsite;
  return {
    target,
    scriptDir: `${host.root}/bin/backup`,
    unitDir: `${host.root}/timers`,
    secretDir,
    ...(host.sharedDatabase
      ? { shared: { container: host.sharedDatabase.container, port: host.sharedDatabase.port } }
      : {}),
    ...(o && stack
      ? {
          offsite: {
            path: o.prefix ? `${o.bucket}/${o.prefix}` : o.bucket,
            recipient: o.recipient,
            retention: { ...o.retention },
            envFile: `${secretDir}/offsite.env`,
            image: stack.images.uploader,
          },
        }
      : {}),
  };
}

/**
 * The uploader's environment file: rclone's settings of the remote named `offsite`, credentials
 * included. Docker passes each line to the uploader container as it is, so a value may not hold a
 * line break (which would add a variable); the error names the key, never the value.
 */
export function offsiteEnvFile(
  o: NonNullable<StackSettings["offsite"]>,
  accessKeyId: string,
  secretAccessKey: string,
): string {
  const check = (key: string, value: string) => {
    if (value === "" || /[\r\n\0]/.test(value)) {
      throw new Error(
        `the secret config key ${key} is empty or holds a line break; set it again with pulumi config set --secret ${key}`,
      );
    }
    return value;
  };
  return [
    "RCLONE_CONFIG_OFFSITE_TYPE=s3",
    `RCLONE_CONFIG_OFFSITE_PROVIDER=${o.provider}`,
    `RCLONE_CONFIG_OFFSITE_ENDPOINT=${o.endpoint}`,
    `RCLONE_CONFIG_OFFSITE_REGION=${o.region}`,
    `RCLONE_CONFIG_OFFSITE_ACCESS_KEY_ID=${check(o.accessKeyIdSecret, accessKeyId)}`,
    `RCLONE_CONFIG_OFFSITE_SECRET_ACCESS_KEY=${check(o.secretAccessKeySecret, secretAccessKey)}`,
    // A token limited to objects cannot create buckets: never try.
    "RCLONE_CONFIG_OFFSITE_NO_CHECK_BUCKET=true",
    "",
  ].join("\n");
}

/** The backup scripts the host keeps in `scriptDir`, as named in components/backup/. */
export const BACKUP_JOB_SCRIPTS = [
  "site-backup.sh",
  "pg-lib.sh",
  "pg-backup.sh",
  "verify-dump.sh",
  "retention.sh",
  "pg-restore.sh",
  "offsite.sh",
] as const;

/** What one site's backup job needs to know. */
export interface BackupJob {
  readonly site: string;
  readonly database: string;
  readonly mode: "dedicated" | "shared";
  /** Host directory of the site's backups. */
  readonly dir: string;
  readonly retention: { readonly daily: number; readonly weekly: number; readonly monthly: number };
}

/** A website's backup job on its host; undefined when it has no database. */
export function siteBackupJob(site: WebsiteSite, host: HostSettings): BackupJob | undefined {
  const database = databaseName(site);
  if (site.database.mode === "none" || database === undefined) return undefined;
  return {
    site: site.name,
    database,
    mode: site.database.mode,
    dir: backupHostDir(host, site.name),
    retention: { ...site.backup.retention },
  };
}

/** The file holding the backup role's password, in libpq's pgpass format (shared mode only). */
export function pgpassFile(host: JobHost, site: string): string {
  return `${host.secretDir}/${site}.pgpass`;
}

/**
 * The arguments of `site-backup.sh` after its action: `key=value` words, each checked to need no
 * quoting. A dedicated database is reached with `docker exec` into `<site>-db` (as postgres over the
 * socket: no password); a shared one from a short-lived container of the cluster's own image on the
 * platform network, as the site's app role, with its password from the pgpass file.
 */
export function backupJobArgs(job: BackupJob, host: JobHost): string[] {
  const r = job.retention;
  const common = [
    `site=${job.site}`,
    `database=${job.database}`,
    `dir=${job.dir}`,
    `retention=${r.daily}:${r.weekly}:${r.monthly}`,
  ];
  const o = host.offsite;
  const offsite = o
    ? [
        `offsite=${o.path}`,
        `recipient=${o.recipient}`,
        `offsite_keep=${o.retention.daily}:${o.retention.weekly}:${o.retention.monthly}`,
        `offsite_env=${o.envFile}`,
        `uploader=${o.image}`,
      ]
    : [];
  if (job.mode === "dedicated") {
    return [...common, `dedicated=${siteNames(job.site).database}`, ...offsite];
  }
  if (!host.shared)
    throw new Error(`site ${job.site}: database mode "shared" needs the host's sharedDatabase`);
  return [
    ...common,
    `shared=${host.shared.container}:${host.shared.port}`,
    `network=${PLATFORM_NETWORK}`,
    `role=${databaseRoles(job.database).app}`,
    `pgpass=${pgpassFile(host, job.site)}`,
    ...offsite,
  ];
}

/** The unit name of a site's backup job (without `.service`/`.timer`). */
export function backupUnitName(site: string): string {
  return `agi-backup-${site}`;
}

/** The command line the backup service runs (its ExecStart): the installed script, checked words. */
export function backupExecStart(job: BackupJob, host: JobHost): string {
  return commandLine([
    "/bin/sh",
    `${host.scriptDir}/site-backup.sh`,
    "backup",
    ...backupJobArgs(job, host),
  ]);
}

export interface Units {
  readonly name: string;
  readonly service: string;
  readonly timer: string;
}

/** The unit name of a site's scheduled restore drill. */
export function drillUnitName(site: string): string {
  return `agi-drill-${site}`;
}

/**
 * A oneshot service and its timer: `execStart` at `schedule` (cron, UTC), a missed run caught up at
 * boot (`Persistent=true`).
 */
export function scheduledUnits(
  name: string,
  what: string,
  execStart: string,
  schedule: string,
): Units {
  const service = `[Unit]
Description=agi-platform: ${what}
# Generated by agi-platform; changes are overwritten on the next deploy.

[Service]
Type=oneshot
ExecStart=${execStart}
Nice=10
`;
  const timer = `[Unit]
Description=agi-platform: ${what} (cron "${schedule.trim()}", UTC)

[Timer]
${onCalendar(schedule)
  .map((c) => `OnCalendar=${c}`)
  .join("\n")}
Persistent=true
Unit=${name}.service

[Install]
WantedBy=timers.target
`;
  return { name, service, timer };
}

/** The unit pair of a site's backup job: at `schedule` (cron, UTC), a missed run caught up at boot. */
export function backupUnits(job: BackupJob, host: JobHost, schedule: string): Units {
  return scheduledUnits(
    backupUnitName(job.site),
    `verified backup of site ${job.site}`,
    backupExecStart(job, host),
    schedule,
  );
}

/**
 * The unit pair of a site's restore drill: the newest verified dump restored into a throwaway
 * database and compared with its manifest, at `schedule`; the result lands in the site's
 * `drill.json`, which `npm run status` reads.
 */
export function drillUnits(job: BackupJob, host: JobHost, schedule: string): Units {
  const execStart = commandLine([
    "/bin/sh",
    `${host.scriptDir}/site-backup.sh`,
    "drill",
    ...backupJobArgs(job, host),
  ]);
  return scheduledUnits(
    drillUnitName(job.site),
    `restore drill of site ${job.site}`,
    execStart,
    schedule,
  );
}

/** Heredoc end marker of the unit files in the install command; never a line of a unit. */
const END = "AGI_UNIT_END";

/**
 * The command that installs (or updates) a unit pair: writes both files atomically into `unitDir`,
 * links them into the deploy user's systemd, reloads it and (re)starts the timer. With
 * `AGI_TIMERS=files` in its environment it writes the files and stops there, saying so (a machine
 * without a user systemd, such as the engine suite's); without it a missing user systemd is an error.
 */
export function installUnitsCommand(units: Units, host: JobHost): string {
  commandLine([host.unitDir, units.name]);
  for (const text of [units.service, units.timer]) {
    if (text.split("\n").includes(END)) throw new Error(`unit ${units.name} contains ${END}`);
  }
  const file = (ext: string, text: string) =>
    `cat > ${host.unitDir}/${units.name}.${ext}.new <<'${END}'\n${text}${END}\n` +
    `mv -f ${host.unitDir}/${units.name}.${ext}.new ${host.unitDir}/${units.name}.${ext}\n`;
  return (
    `set -eu\nmkdir -p ${host.unitDir}\n` +
    file("service", units.service) +
    file("timer", units.timer) +
    `if [ "\${AGI_TIMERS:-systemd}" = files ]; then echo "${units.name}: unit files written to ${host.unitDir}, not enabled (AGI_TIMERS=files)"; exit 0; fi\n` +
    // A non-interactive SSH command may lack the user manager's address; it is always this one.
    `export XDG_RUNTIME_DIR="\${XDG_RUNTIME_DIR:-/run/user/$(id -u)}"\n` +
    `if ! systemctl --user show-environment >/dev/null 2>&1; then echo "${units.name}: the deploy user has no systemd user manager; run 'loginctl enable-linger' for it once (README, first deployment)" >&2; exit 1; fi\n` +
    `systemctl --user link ${host.unitDir}/${units.name}.service ${host.unitDir}/${units.name}.timer >/dev/null\n` +
    `systemctl --user daemon-reload\n` +
    `systemctl --user enable ${units.name}.timer >/dev/null\n` +
    `systemctl --user restart ${units.name}.timer\n`
  );
}

/** The command that removes a unit pair: timer stopped and disabled, links and files gone. */
export function removeUnitsCommand(units: Units, host: JobHost): string {
  const n = units.name;
  commandLine([host.unitDir, n]);
  return (
    `set -u\n` +
    `export XDG_RUNTIME_DIR="\${XDG_RUNTIME_DIR:-/run/user/$(id -u)}"\n` +
    `if [ "\${AGI_TIMERS:-systemd}" != files ] && systemctl --user show-environment >/dev/null 2>&1; then\n` +
    `  systemctl --user disable --now ${n}.timer >/dev/null 2>&1 || true\n` +
    `  systemctl --user stop ${n}.service >/dev/null 2>&1 || true\n` +
    `  for f in ${n}.service ${n}.timer; do l="\${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user/$f"; if [ -L "$l" ]; then rm -f "$l"; fi; done\n` +
    `  systemctl --user daemon-reload\n` +
    `fi\n` +
    `rm -f ${host.unitDir}/${n}.service ${host.unitDir}/${n}.timer\n`
  );
}

/** The command that writes a job's secret file (content on standard input) with mode 0600. */
export function installSecretCommand(file: string): string {
  commandLine([file]);
  const dir = file.slice(0, file.lastIndexOf("/"));
  return `umask 077 && mkdir -p ${dir} && chmod 700 ${dir} && cat > ${file}.new && mv -f ${file}.new ${file}`;
}
