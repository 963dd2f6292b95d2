import type { PolicyEngine } from './ports.js';

/** The policy engine used until Cedar policies are configured: every hop is allowed. */
export const allowAllPolicy: PolicyEngine = {
  authorizeDelegation: () => Promise.resolve({ allowed: true, reasons: ['allow-all'] }),
};
