import { describe, expect, it } from 'vitest';
import { parseSinkConfig, sinkBackoffMs, sinkRequest } from '../../src/core/audit/sinks.js';

const events = [
  { class_uid: 6003, time: 1_796_130_548_430, metadata: { sequence: 7, uid: 'h7' } },
  { class_uid: 3002, time: 1_796_130_549_000, metadata: { sequence: 9, uid: 'h9' } },
];

describe('audit sink requests', () => {
  it('sends a webhook JSON lines, with the credential as a bearer token', () => {
    expect(sinkRequest('webhook', 's3cret', events)).toEqual({
      headers: { 'Content-Type': 'application/x-ndjson', Authorization: 'Bearer s3cret' },
      body: `${JSON.stringify(events[0])}\n${JSON.stringify(events[1])}\n`,
    });
    expect(sinkRequest('webhook', null, events).headers).toEqual({ 'Content-Type': 'application/x-ndjson' });
  });

  it('sends Splunk HEC events, time in seconds, with the HEC token', () => {
    const request = sinkRequest('splunk', 'hec-token', events);
    expect(request.headers).toEqual({ 'Content-Type': 'application/json', Authorization: 'Splunk hec-token' });
    expect(request.body.split('\n').map((l) => JSON.parse(l) as unknown)).toEqual([
      { time: 1_796_130_548.43, source: 'baton', sourcetype: 'ocsf', event: events[0] },
      { time: 1_796_130_549, source: 'baton', sourcetype: 'ocsf', event: events[1] },
    ]);
  });

  it('sends Datadog logs, the event as the message, with the API key', () => {
    const request = sinkRequest('datadog', 'dd-key', events);
    expect(request.headers).toEqual({ 'Content-Type': 'application/json', 'DD-API-KEY': 'dd-key' });
    expect(JSON.parse(request.body)).toEqual([
      { ddsource: 'baton', service: 'baton', ddtags: 'ocsf_class_uid:6003', message: JSON.stringify(events[0]) },
      { ddsource: 'baton', service: 'baton', ddtags: 'ocsf_class_uid:3002', message: JSON.stringify(events[1]) },
    ]);
  });

  it('waits twice as long after each failure in a row, up to the maximum', () => {
    expect([1, 2, 3, 4, 10, 100].map((n) => sinkBackoffMs(n, 1000, 60_000))).toEqual([
      1000, 2000, 4000, 8000, 60_000, 60_000,
    ]);
  });
});

describe('audit sink configuration', () => {
  it('takes a webhook, Splunk or Datadog sink, batch of 100 by default', () => {
    expect(
      parseSinkConfig({ kind: 'splunk', url: 'https://splunk.example:8088/services/collector', credential: 't' }),
    ).toEqual({
      kind: 'splunk',
      url: 'https://splunk.example:8088/services/collector',
      credential: 't',
      batchSize: 100,
    });
    expect(parseSinkConfig({ kind: 'webhook', url: 'http://localhost:9000/in', batch_size: 1 })).toMatchObject({
      credential: null,
      batchSize: 1,
    });
  });

  it.each([
    [[], 'body must be a JSON object'],
    [{ kind: 'syslog', url: 'https://x.example' }, 'kind must be webhook, splunk or datadog'],
    [{ kind: 'webhook', url: 'not a url' }, 'url must be an https URL'],
    [{ kind: 'webhook', url: 'http://10.0.0.1/in' }, 'url must be an https URL (http only to localhost)'],
    [{ kind: 'webhook', url: 'https://u:p@x.example/in' }, 'url must carry no credentials and no fragment'],
    [{ kind: 'datadog', url: 'https://x.example' }, 'credential is required for datadog (the API key)'],
    [
      { kind: 'webhook', url: 'https://x.example', credential: 'a b' },
      'credential must be 1–512 visible ASCII characters',
    ],
    [{ kind: 'webhook', url: 'https://x.example', batch_size: 0 }, 'batch_size must be an integer from 1 to 1000'],
    [{ kind: 'webhook', url: 'https://x.example', batch_size: 1.5 }, 'batch_size must be an integer from 1 to 1000'],
    [{ kind: 'webhook', url: 'https://x.example', extra: 1 }, 'unknown member "extra"'],
  ])('refuses %j: %s', (body, message) => {
    expect(() => parseSinkConfig(body)).toThrow(
      expect.objectContaining({ code: 'invalid_request', description: message }),
    );
  });
});
