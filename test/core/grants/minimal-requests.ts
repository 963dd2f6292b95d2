import type { FormParams } from '../../../src/core/grants/token-request.js';

/** The least each registered grant's token request carries, by grant type, and what it parses to. */
export const minimalRequests: Readonly<
  Record<string, { readonly params: FormParams; readonly parsed: Readonly<Record<string, unknown>> }>
> = {
  'urn:ietf:params:oauth:grant-type:token-exchange': {
    params: {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: 'eyJ.subject',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    },
    parsed: {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: 'eyJ.subject',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      audience: [],
      resource: [],
    },
  },
  client_credentials: {
    params: { grant_type: 'client_credentials' },
    parsed: { grant_type: 'client_credentials', audience: [], resource: [] },
  },
  authorization_code: {
    params: { grant_type: 'authorization_code', code: 'code-1', redirect_uri: 'https://app.example/callback' },
    parsed: {
      grant_type: 'authorization_code',
      code: 'code-1',
      redirect_uri: 'https://app.example/callback',
      resource: [],
    },
  },
  refresh_token: {
    params: { grant_type: 'refresh_token', refresh_token: 'refresh-1' },
    parsed: { grant_type: 'refresh_token', refresh_token: 'refresh-1', resource: [] },
  },
};
