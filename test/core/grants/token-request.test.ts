import { describe, expect, it } from 'vitest';
import { OAuthError } from '../../../src/core/errors.js';
import { grants } from '../../../src/core/grants/index.js';
import { parseTokenRequest, tokenRequestSchema, type FormParams } from '../../../src/core/grants/token-request.js';
import { minimalRequests } from './minimal-requests.js';

function refusal(params: FormParams): { error: string; error_description: string } {
  try {
    parseTokenRequest(params);
  } catch (error) {
    if (error instanceof OAuthError) return error.toJSON();
    throw error;
  }
  throw new Error('request was accepted');
}

describe('the token request', () => {
  it('has a case for each registered grant, and no other', () => {
    expect(Object.keys(minimalRequests)).toEqual(grants.map((grant) => grant.grantType));
    expect(tokenRequestSchema.options).toEqual(grants.map((grant) => grant.schema));
  });

  it.each(Object.entries(minimalRequests))(
    "accepts %s's minimal request, parsed by its grant, which it returns",
    (grantType, { params, parsed }) => {
      expect(tokenRequestSchema.parse(params)).toEqual(parsed);
      const { grant, request, client } = parseTokenRequest({ ...params, client_id: 'app' });
      expect(grant).toBe(grants.find((g) => g.grantType === grantType));
      expect(request).toEqual(parsed);
      expect(client).toEqual({ client_id: 'app' });
    },
  );

  it.each([
    [{}, { error: 'invalid_request', error_description: 'grant_type is required' }],
    [
      {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      },
      { error: 'invalid_request', error_description: 'subject_token is required' },
    ],
    [
      { grant_type: 'authorization_code', redirect_uri: 'https://app.example/callback' },
      { error: 'invalid_request', error_description: 'code is required' },
    ],
    [
      { grant_type: 'refresh_token', scope: 'read' },
      { error: 'invalid_request', error_description: 'refresh_token is required' },
    ],
    [
      { grant_type: 'client_credentials', scope: ['read', 'write'] },
      { error: 'invalid_request', error_description: 'scope must be a single string' },
    ],
    [
      { grant_type: 'password' },
      { error: 'unsupported_grant_type', error_description: 'grant_type "password" is not supported' },
    ],
    [
      { grant_type: '__proto__' },
      { error: 'unsupported_grant_type', error_description: 'grant_type "__proto__" is not supported' },
    ],
    [
      { grant_type: 'constructor' },
      { error: 'unsupported_grant_type', error_description: 'grant_type "constructor" is not supported' },
    ],
    [
      { grant_type: ['client_credentials', 'refresh_token'] },
      {
        error: 'unsupported_grant_type',
        error_description: 'grant_type "client_credentials,refresh_token" is not supported',
      },
    ],
  ])('refuses %j', (params: FormParams, expected) => {
    expect(refusal(params)).toEqual(expected);
  });
});
