import { describe, expect, it } from 'vitest';
import { ClientDocumentError, createClientDocuments } from '../../src/core/clients/metadata-document.js';
import type { DocumentFetcher, FetchedDocument } from '../../src/core/ports.js';

const documentAt = (url: string): FetchedDocument => ({
  status: 200,
  contentType: 'application/json',
  cacheControl: 'no-store',
  body: JSON.stringify({
    client_id: url,
    client_name: 'Desk agent',
    redirect_uris: ['http://127.0.0.1/callback'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'none',
  }),
});

/** A fetcher whose answers the test sets per URL, counting the fetches it made. */
function scriptedFetcher() {
  const answers = new Map<string, () => Promise<FetchedDocument>>();
  const fetched: string[] = [];
  const fetcher: DocumentFetcher = {
    get(url) {
      fetched.push(url);
      const answer = answers.get(url);
      return answer === undefined ? Promise.resolve({ ...documentAt(url), status: 404 }) : answer();
    },
  };
  return { fetcher, answers, fetched };
}

describe('client ID metadata documents: fetching under load', () => {
  it('refuses a document that just failed without fetching it again, until failureSeconds have passed', async () => {
    let now = 1_000_000;
    const { fetcher, answers, fetched } = scriptedFetcher();
    const documents = createClientDocuments({
      fetcher,
      clock: { now: () => now },
      allowHttpLoopback: false,
      failureSeconds: 30,
    });
    const url = 'https://mcp.example/client.json';
    const failure = 'the client metadata document could not be fetched: the server answered 404';
    await expect(documents.resolve(url)).rejects.toThrow(new ClientDocumentError(failure));
    answers.set(url, () => Promise.resolve(documentAt(url)));
    now += 29_999;
    await expect(documents.resolve(url)).rejects.toThrow(new ClientDocumentError(failure));
    expect(fetched).toEqual([url]);
    now += 1;
    await expect(documents.resolve(url)).resolves.toMatchObject({ url: new URL(url), name: 'Desk agent' });
    expect(fetched).toEqual([url, url]);
  });

  it('fetches at most maxConcurrentFetches documents at once; a request for one being fetched waits for it', async () => {
    const { fetcher, answers, fetched } = scriptedFetcher();
    const release: (() => void)[] = [];
    const urls = ['https://a.example/c.json', 'https://b.example/c.json', 'https://c.example/c.json'];
    for (const url of urls)
      answers.set(url, () => new Promise((resolve) => release.push(() => resolve(documentAt(url)))));
    const documents = createClientDocuments({
      fetcher,
      clock: { now: () => 0 },
      allowHttpLoopback: false,
      maxConcurrentFetches: 2,
    });
    const first = documents.resolve(urls[0] as string);
    const second = documents.resolve(urls[1] as string);
    const firstAgain = documents.resolve(urls[0] as string);
    await expect(documents.resolve(urls[2] as string)).rejects.toThrow(
      new ClientDocumentError(
        'too many client metadata documents are being fetched at once; try again in a few seconds',
      ),
    );
    for (const done of release) done();
    expect((await first).name).toBe('Desk agent');
    expect(await firstAgain).toBe(await first);
    expect((await second).name).toBe('Desk agent');
    expect(fetched).toEqual([urls[0], urls[1]]);
    // Once the two are done, the third is fetched.
    const third = documents.resolve(urls[2] as string);
    (release[2] as () => void)();
    expect((await third).name).toBe('Desk agent');
  });
});
