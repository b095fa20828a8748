// CrossGuard policy pack: `pulumi preview --policy-pack policy` (after `npm ci` in this folder).
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("istio-progressive-delivery", { policies });
