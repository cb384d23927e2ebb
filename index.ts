/**
 * agi-platform: the single source of truth for the Docker hosts and their sites.
 * Reads the stack settings (Pulumi.<stack>.yaml) and every file in sites/, then builds the hosts.
 */
import * as path from "node:path";
import { runProgram } from "./components/program";

const program = runProgram({ sitesDir: path.join(__dirname, "sites") });

/** What runs where: `pulumi stack output inventory`. Holds no secret. */
export const inventory = program.inventory;
/** The edge configuration: the main Caddyfile and every site fragment, by path. */
export const caddy = program.caddy;
