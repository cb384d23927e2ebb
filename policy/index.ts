/**
 * The platform's policy pack, every policy mandatory: `pulumi preview --policy-pack policy` and
 * `pulumi up --policy-pack policy` (the workflows do both). The rules are in rules.ts.
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("agi-platform", { enforcementLevel: "mandatory", policies });
