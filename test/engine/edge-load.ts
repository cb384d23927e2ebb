/**
 * A small request loop through the edge, for the edge's own replacement and the benchmark's light
 * load. A request fails on a 5xx, a connection error, or no answer within 10 s (the shared
 * definition of a failed request). Each request opens its own connection (no keep-alive), so a
 * refused connection shows as it would to a new visitor.
 */
import * as https from "node:https";

export const REQUEST_TIMEOUT_MS = 10_000;

export interface EdgeLoadOptions {
  /** The edge's HTTPS port on loopback. */
  port: number;
  /** Host names (SNI and Host) taken in turn. */
  hosts: string[];
  /** The edge's CA certificate (PEM). */
  ca: string;
  /** Requests in flight at once; default 2. */
  workers?: number;
  /** Pause between one worker's requests, in ms; default 0. */
  pauseMs?: number;
}

export interface EdgeLoadResult {
  requests: number;
  failed: number;
  /** Failures by reason: "status 502", "ECONNREFUSED", "timeout", ... */
  reasons: Record<string, number>;
  /** Seconds from the start of the first failed request to the end of the last one; 0 if none. */
  gapSeconds: number;
  seconds: number;
}

interface Outcome {
  start: number;
  end: number;
  failure?: string;
}

function once(o: EdgeLoadOptions, host: string): Promise<Outcome> {
  const start = Date.now();
  return new Promise((resolve) => {
    const done = (failure?: string) => resolve({ start, end: Date.now(), failure });
    const req = https.request(
      {
        host: "127.0.0.1",
        port: o.port,
        servername: host,
        path: "/",
        headers: { host },
        ca: o.ca,
        agent: false,
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        res.resume();
        res.on("end", () =>
          done((res.statusCode ?? 0) >= 500 ? `status ${res.statusCode}` : undefined),
        );
        res.on("error", (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
      },
    );
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "timeout" })));
    req.on("error", (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
    req.end();
  });
}

/** Starts the loop; `stop()` ends it after the requests in flight and returns the counts. */
export function startEdgeLoad(o: EdgeLoadOptions): { stop(): Promise<EdgeLoadResult> } {
  const outcomes: Outcome[] = [];
  const t0 = Date.now();
  let running = true;
  let turn = 0;
  const worker = async () => {
    while (running) {
      outcomes.push(await once(o, o.hosts[turn++ % o.hosts.length]));
      if (o.pauseMs) await new Promise((r) => setTimeout(r, o.pauseMs));
    }
  };
  const workers = Array.from({ length: o.workers ?? 2 }, worker);
  return {
    async stop() {
      running = false;
      await Promise.all(workers);
      const failed = outcomes.filter((x) => x.failure);
      const reasons: Record<string, number> = {};
      for (const f of failed) reasons[f.failure!] = (reasons[f.failure!] ?? 0) + 1;
      const gap = failed.length
        ? (Math.max(...failed.map((f) => f.end)) - Math.min(...failed.map((f) => f.start))) / 1000
        : 0;
      return {
        requests: outcomes.length,
        failed: failed.length,
        reasons,
        gapSeconds: Math.round(gap * 100) / 100,
        seconds: Math.round((Date.now() - t0) / 10) / 100,
      };
    },
  };
}

/** One HTTPS request to the edge on loopback (SNI and Host `host`), trusting the edge's CA. */
export function requestEdge(
  port: number,
  ca: string,
  host: string,
  pathname = "/",
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port,
        servername: host,
        path: pathname,
        headers: { host },
        ca,
        agent: false,
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("no answer within 10 s")));
    req.on("error", reject);
    req.end();
  });
}
