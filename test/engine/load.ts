/**
 * A bounded request loop through the edge, for measuring what an update costs the people using a
 * site: `clients` concurrent clients send HTTPS requests (SNI, the edge's CA, keep-alive) one after
 * another until the loop is stopped and at least `minRequests` have been answered or failed. A request
 * fails on a 5xx, a connection error, or no answer within `timeoutMs`. Used by the engine suite and by
 * `npm run bench:update`.
 */
import * as https from "node:https";

export interface LoadOptions {
  /** The edge's HTTPS port on loopback. */
  port: number;
  /** Host name (SNI and Host header). */
  host: string;
  /** The edge's CA certificate. */
  ca: string;
  path?: string;
  /** Concurrent clients; default 48. */
  clients?: number;
  /** Requests at least, counted over the whole loop; default 10,000. */
  minRequests?: number;
  /** A request with no answer within this many milliseconds fails; default 10,000. */
  timeoutMs?: number;
}

export interface LoadResult {
  requests: number;
  failed: number;
  /** Requests sent again on a new connection after a reused one was closed before any answer. */
  retried: number;
  /** Failures by kind: "503", "502", "timeout", "ECONNRESET", ... */
  failures: Record<string, number>;
  /** Answers by status code. */
  statuses: Record<string, number>;
  seconds: number;
}

export interface RunningLoad {
  /** Requests so far. */
  readonly requests: () => number;
  /** Ends the loop once at least minRequests are done; resolves with the counts. */
  stop(): Promise<LoadResult>;
}

/** Errors of a connection the server closed: on a reused one before any answer, a retry is safe. */
const CLOSED = ["ECONNRESET", "EPIPE", "ECONNABORTED"];
/** The outcome of a request that may be retried on a new connection. */
const STALE = "stale keep-alive connection";

/** One request: its status code, or the kind of failure. */
function request(
  agent: https.Agent | false,
  o: Required<Omit<LoadOptions, "clients" | "minRequests">>,
): Promise<number | string> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (v: number | string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(v);
    };
    const req = https.request(
      {
        host: "127.0.0.1",
        port: o.port,
        servername: o.host,
        path: o.path,
        headers: { host: o.host },
        ca: o.ca,
        agent,
      },
      (res) => {
        res.resume();
        res.on("end", () => done(res.statusCode ?? 0));
        res.on("error", (err: NodeJS.ErrnoException) => done(err.code ?? "response error"));
      },
    );
    const timer = setTimeout(() => {
      done("timeout");
      req.destroy();
    }, o.timeoutMs);
    let answered = false;
    req.on("response", () => (answered = true));
    req.on("error", (err: NodeJS.ErrnoException) => {
      const code = err.code ?? err.message;
      done(req.reusedSocket && !answered && CLOSED.includes(code) ? STALE : code);
    });
    req.end();
  });
}

/** Starts the loop; it runs until `stop()` and the minimum count are both reached. */
export function startLoad(options: LoadOptions): RunningLoad {
  const o = {
    path: "/",
    timeoutMs: 10_000,
    ...options,
  };
  const clients = options.clients ?? 48;
  const minRequests = options.minRequests ?? 10_000;
  const agent = new https.Agent({ keepAlive: true, maxSockets: clients });
  const result: LoadResult = {
    requests: 0,
    failed: 0,
    retried: 0,
    failures: {},
    statuses: {},
    seconds: 0,
  };
  const t0 = Date.now();
  let stopping = false;
  const client = async () => {
    while (!(stopping && result.requests >= minRequests)) {
      let outcome = await request(agent, o);
      if (outcome === STALE) {
        result.retried++;
        outcome = await request(false, o);
        if (outcome === STALE) outcome = "ECONNRESET";
      }
      result.requests++;
      if (typeof outcome === "number") {
        result.statuses[outcome] = (result.statuses[outcome] ?? 0) + 1;
        if (outcome < 500) continue;
      }
      result.failed++;
      result.failures[String(outcome)] = (result.failures[String(outcome)] ?? 0) + 1;
    }
  };
  const all = Promise.all(Array.from({ length: clients }, client));
  return {
    requests: () => result.requests,
    async stop() {
      stopping = true;
      await all;
      agent.destroy();
      result.seconds = (Date.now() - t0) / 1000;
      return result;
    },
  };
}

/** "12 of 10,234 failed (503: 10, timeout: 2) in 21.4 s". */
export function describeLoad(r: LoadResult): string {
  const kinds = Object.entries(r.failures)
    .map(([k, n]) => `${k}: ${n}`)
    .join(", ");
  const retried = r.retried ? `, ${r.retried} retried on a new connection` : "";
  return `${r.failed} of ${r.requests.toLocaleString("en")} failed${kinds ? ` (${kinds})` : ""}${retried} in ${r.seconds.toFixed(1)} s`;
}
