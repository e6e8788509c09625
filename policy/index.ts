/**
 * The CrossGuard pack run with every preview and update: `pulumi preview --policy-pack policy`. The checks
 * live in ./policies.ts (tested without the CLI); this file only serves them.
 */
import { PolicyPack } from "@pulumi/policy";
import { POLICIES } from "./policies";

new PolicyPack("clipper-pgbouncer", {
  description:
    "Guardrails of the Clipper PgBouncer program: pool budget, restricted pods, no plaintext secrets, prod availability, prod spread, prod server login without a client's proof.",
  policies: POLICIES,
});
