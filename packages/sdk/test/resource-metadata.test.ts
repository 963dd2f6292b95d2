import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { protectedResourceMetadata, protectedResourceMetadataUrl } from '../src/index.js';

describe('protected resource metadata (RFC 9728)', () => {
  it('puts the well-known segment before the resource path', () => {
    expect(
      [
        'https://payments.example',
        'https://payments.example/',
        'https://api.example/payments/',
        'https://api.example:8443/v1/pay',
      ].map(protectedResourceMetadataUrl),
    ).toEqual([
      'https://payments.example/.well-known/oauth-protected-resource',
      'https://payments.example/.well-known/oauth-protected-resource',
      'https://api.example/.well-known/oauth-protected-resource/payments',
      'https://api.example:8443/.well-known/oauth-protected-resource/v1/pay',
    ]);
    expect(() => protectedResourceMetadataUrl('payments')).toThrow(TypeError);
  });

  it('names Baton as the authorization server, served from a Hono route', async () => {
    const app = new Hono();
    const resource = 'https://payments.example';
    app.get(new URL(protectedResourceMetadataUrl(resource)).pathname, (c) =>
      c.json(
        protectedResourceMetadata({
          resource,
          issuer: 'https://baton.example',
          scopes: ['payments:read'],
          name: 'Payments',
        }),
      ),
    );
    const response = await app.request('/.well-known/oauth-protected-resource');
    expect([response.status, await response.json()]).toEqual([
      200,
      {
        resource,
        authorization_servers: ['https://baton.example'],
        bearer_methods_supported: ['header'],
        scopes_supported: ['payments:read'],
        resource_name: 'Payments',
      },
    ]);
    expect(protectedResourceMetadata({ resource, issuer: 'https://baton.example' })).toEqual({
      resource,
      authorization_servers: ['https://baton.example'],
      bearer_methods_supported: ['header'],
    });
  });
});
