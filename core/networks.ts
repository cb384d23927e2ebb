/**
 * Which networks a client app joins, as plain data: the one list the Website component wires, so the
 * isolation setting, the database mode and the site file's `app.uses` meet in one place.
 */
import type { WebsiteSite } from "./site";
import type { StackSettings } from "../stacks/settings";

export type Isolation = StackSettings["isolation"];

/** One network of the app: the platform's (agi-network), the site's edge network, or its internal one. */
export interface AppNetwork {
  readonly network: "platform" | "edge" | "internal";
}

/** Whether the site has an internal network: for its dedicated database or its Docker API proxy. */
export function needsInternalNetwork(site: WebsiteSite): boolean {
  return site.database.mode === "dedicated" || site.app.dockerReadAccess;
}

/**
 * Whether the app is on the platform network under `isolation: "per-site"`: when its site file says
 * it uses the services, or its database lives in the shared cluster.
 */
export function usesPlatformNetwork(site: WebsiteSite): boolean {
  return site.app.uses.includes("services") || site.database.mode === "shared";
}

/**
 * Whether the site gets a network of its own with the edge (`<site>-edge`): every active website,
 * whatever the isolation, since the edge reaches the app there by the site's name, an alias that
 * only the version that passed its gate holds.
 */
export function hasEdgeNetwork(site: WebsiteSite): boolean {
  return site.status === "active";
}

/**
 * The app's networks, the first being the one it starts on. Every version starts on `<site>-edge`
 * without an alias, so the edge cannot reach a version that has not passed its gate; the gate then
 * gives it the site's name there (components/app-gate.sh). It joins agi-network with
 * "shared-network", and with "per-site" only when it uses what is there.
 */
export function appNetworks(site: WebsiteSite, isolation: Isolation): AppNetwork[] {
  const out: AppNetwork[] = [{ network: "edge" }];
  if (isolation === "shared-network" || usesPlatformNetwork(site))
    out.push({ network: "platform" });
  if (needsInternalNetwork(site)) out.push({ network: "internal" });
  return out;
}
