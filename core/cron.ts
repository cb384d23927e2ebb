/**
 * The one cron grammar of the platform: five fields in UTC (minute, hour, day of month, month, day of
 * week), each a comma list of `*`, `N`, `a-b`, `*\/n`, `a-b/n` or `N/n`; day of week 0-7 (0 and 7 are
 * Sunday); no names. Day matching is standard (Vixie) cron's: when both day fields are restricted
 * (neither starts with `*`), a day matches if either does; otherwise both must. The site schema
 * checks schedules with it, the host timers are translated from it (core/timers.ts).
 */

export const CRON_PATTERN = /^(\S+\s+){4}\S+$/;
const CRON_FIELD = /^(\*|[0-9]+(-[0-9]+)?)(\/[0-9]+)?(,(\*|[0-9]+(-[0-9]+)?)(\/[0-9]+)?)*$/;
const CRON_BOUNDS: [string, number, number][] = [
  ["minute", 0, 59],
  ["hour", 0, 23],
  ["day of month", 1, 31],
  ["month", 1, 12],
  ["day of week", 0, 7],
];

/** What the platform cannot run in a cron schedule, or undefined: numbers, *, a-b, /n, lists. */
export function cronProblem(schedule: string): string | undefined {
  const fields = schedule.trim().split(/\s+/);
  if (fields.length !== 5) return 'must be a five-field cron schedule such as "17 2 * * *"';
  for (const [i, field] of fields.entries()) {
    const [what, lo, hi] = CRON_BOUNDS[i];
    if (!CRON_FIELD.test(field)) {
      return `${what} field ${JSON.stringify(field)}: use numbers, *, a-b, */n and commas (no names)`;
    }
    if (/\/0+(,|$)/.test(field))
      return `${what} field ${JSON.stringify(field)}: a step of 0 never repeats`;
    for (const n of field.match(/[0-9]+/g) ?? []) {
      const isStep = field.includes(`/${n}`);
      if (!isStep && (Number(n) < lo || Number(n) > hi))
        return `${what} field ${JSON.stringify(field)}: ${n} is outside ${lo}-${hi}`;
    }
    for (const m of field.matchAll(/([0-9]+)-([0-9]+)/g)) {
      if (Number(m[1]) > Number(m[2]))
        return `${what} field ${JSON.stringify(field)}: the range ${m[0]} runs backwards, so it never matches; write ${m[2]}-${m[1]} or a list`;
    }
  }
  if (cronDaysPerFourYears(schedule) === 0)
    return `${JSON.stringify(schedule.trim())} names no day that exists (such as 31 February), so it never fires`;
  return undefined;
}

/**
 * The problem with a valid schedule that fires more often than once an `hour` (more than one minute)
 * or once a `day` (more than one minute or hour), or undefined. Each run of a site's job costs the
 * whole host (a dump, a restore), so a site file may not ask for one every minute.
 */
export function cronFrequencyProblem(schedule: string, atMost: "hour" | "day"): string | undefined {
  if (cronProblem(schedule) !== undefined) return undefined;
  const s = setsOf(schedule);
  if (atMost === "hour" && s.minutes.length > 1)
    return "fires more than once an hour; at most once an hour (give the minute as one number)";
  if (atMost === "day" && (s.minutes.length > 1 || s.hours.length > 1))
    return "fires more than once a day; at most once a day (give the minute and the hour as one number each)";
  return undefined;
}

/**
 * A note for a valid schedule that fires on fewer days than once a month on average (such as only on
 * 29 February), or undefined.
 */
export function cronNote(schedule: string): string | undefined {
  if (cronProblem(schedule) !== undefined) return undefined;
  const days = cronDaysPerFourYears(schedule);
  return days < 48
    ? `${JSON.stringify(schedule.trim())} fires on ${days} day${days === 1 ? "" : "s"} in four years, less than once a month`
    : undefined;
}

/** The values one valid cron field matches, within lo..hi. */
function cronValues(field: string, lo: number, hi: number): Set<number> {
  const out = new Set<number>();
  for (const part of field.split(",")) {
    const [range, stepText] = part.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    let a = lo;
    let b = hi;
    if (range !== "*") {
      const [x, y] = range.split("-");
      a = Number(x);
      b = y !== undefined ? Number(y) : stepText === undefined ? a : hi;
    }
    for (let v = a; v <= b; v += step) out.add(v);
  }
  return out;
}

/** A valid schedule as explicit sets of values, and whether each day field restricts the day. */
export interface CronSets {
  readonly minutes: number[];
  readonly hours: number[];
  readonly days: number[];
  readonly months: number[];
  /** Days of the week 0-6, Sunday 0 (a 7 in the schedule is Sunday). */
  readonly weekdays: number[];
  /** Day of month and day of week both restricted: a day matches if either does (else both must). */
  readonly eitherDay: boolean;
}

/** The schedule's sets; throws on a schedule cronProblem refuses. */
export function cronSets(schedule: string): CronSets {
  const problem = cronProblem(schedule);
  if (problem !== undefined)
    throw new Error(`cron schedule ${JSON.stringify(schedule)}: ${problem}`);
  return setsOf(schedule);
}

/** The sets of a schedule whose fields are valid (the day check of cronProblem uses it too). */
function setsOf(schedule: string): CronSets {
  const [minF, hourF, domF, monF, dowF] = schedule.trim().split(/\s+/);
  const sorted = (s: Set<number>) => [...s].sort((a, b) => a - b);
  const dow = cronValues(dowF, 0, 7);
  if (dow.has(7)) {
    dow.delete(7);
    dow.add(0);
  }
  return {
    minutes: sorted(cronValues(minF, 0, 59)),
    hours: sorted(cronValues(hourF, 0, 23)),
    days: sorted(cronValues(domF, 1, 31)),
    months: sorted(cronValues(monF, 1, 12)),
    weekdays: sorted(dow),
    eitherDay: !domF.startsWith("*") && !dowF.startsWith("*"),
  };
}

/** Whether the schedule fires on the UTC day of `t`. */
function dayMatches(s: CronSets, t: Date): boolean {
  if (!s.months.includes(t.getUTCMonth() + 1)) return false;
  const a = s.days.includes(t.getUTCDate());
  const b = s.weekdays.includes(t.getUTCDay());
  return s.eitherDay ? a || b : a && b;
}

/**
 * The next `count` times (UTC, whole minutes) the schedule fires strictly after `after`: cron's own
 * reading of the schedule, which the host timer's calendar must reproduce. Looks 100 years ahead at
 * most, so a schedule that fires rarely (29 February) still ends.
 */
export function cronNextFires(schedule: string, after: Date, count: number): Date[] {
  const s = cronSets(schedule);
  const out: Date[] = [];
  const start = Date.UTC(after.getUTCFullYear(), after.getUTCMonth(), after.getUTCDate());
  const end = start + 100 * 366 * 86_400_000;
  for (let day = start; day < end && out.length < count; day += 86_400_000) {
    if (!dayMatches(s, new Date(day))) continue;
    for (const h of s.hours) {
      for (const m of s.minutes) {
        const t = day + (h * 60 + m) * 60_000;
        if (t > after.getTime() && out.length < count) out.push(new Date(t));
      }
    }
  }
  return out;
}

/** On how many days of 2024-2027 (a leap year included) a schedule with valid fields fires. */
function cronDaysPerFourYears(schedule: string): number {
  const s = setsOf(schedule);
  let days = 0;
  for (let t = Date.UTC(2024, 0, 1); t < Date.UTC(2028, 0, 1); t += 86_400_000) {
    if (dayMatches(s, new Date(t))) days++;
  }
  return days;
}
