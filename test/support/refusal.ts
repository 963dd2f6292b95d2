import { OAuthError } from '../../src/core/errors.js';

/** An OAuth refusal as a test compares it: its code, its description, and the detail kept for logs when it has one. */
export interface Refusal {
  readonly code: string;
  readonly description: string;
  readonly detail?: string;
}

/** The refusal `work` ends in; fails the test if it succeeds or fails with anything but an OAuthError. */
export async function refusalOf(work: Promise<unknown> | (() => unknown)): Promise<Refusal> {
  try {
    await (typeof work === 'function' ? work() : work);
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    return {
      code: error.code,
      description: error.description,
      ...(error.detail === undefined ? {} : { detail: error.detail }),
    };
  }
  throw new Error('accepted where a refusal was expected');
}
