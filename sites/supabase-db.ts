import { defineSite } from "../core/site";

// The shared PostgreSQL cluster. The seed routes db.agistaffers.com to it: a database gets no public
// route. Listed so its name is reserved and it shows in the inventory.
export default defineSite({
  name: "supabase-db",
  kind: "service",
  domains: [],
  upstream: { host: "supabase-db", port: 5432 },
});
