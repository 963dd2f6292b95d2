import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { rootCertificates } from 'node:tls';
import { DocumentFetchError } from '../core/errors.js';
import type { DocumentFetcher, FetchedDocument } from '../core/ports.js';

/** A resolved address of a host name. */
export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

export interface NodeDocumentFetcherOptions {
  /** Development only: plain http to `127.0.0.1`, `localhost` or `[::1]`, which must resolve to loopback. */
  readonly allowHttpLoopback: boolean;
  /**
   * Development only, with `allowHttpLoopback`: https to those loopback hosts too, trusting this CA
   * certificate (PEM) there besides the system's, so that a test or a local MCP client can serve
   * its document with a certificate of its own. Without it, https never reaches loopback.
   */
  readonly loopbackCa?: string;
  /** For the whole fetch, redirects included (default 5 s). */
  readonly timeoutMs?: number;
  /** The most a body may hold (default 5 KiB); a longer one is abandoned. */
  readonly maxBytes?: number;
  /** How many redirects are followed at most (default 3). */
  readonly maxRedirects?: number;
  /** Resolves a host name (default: the system resolver, every address); a test may answer for a name. */
  readonly resolve?: (host: string) => Promise<readonly ResolvedAddress[]>;
}

/**
 * Addresses that are not on the public internet (RFC 6890 and the IANA special-purpose
 * registries): private, shared (CGNAT), loopback, link-local, unique-local, documentation,
 * benchmarking, multicast, reserved and unspecified. IPv4-mapped, NAT64, 6to4 and Teredo IPv6
 * addresses are refused whole, since each embeds an IPv4 address a check of the IPv6 form
 * would not see.
 */
const notPublic = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  notPublic.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['::ffff:0:0', 96],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 32],
  ['2001:2::', 48],
  ['2001:db8::', 32],
  ['2001:10::', 28],
  ['2002::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const)
  notPublic.addSubnet(network, prefix, 'ipv6');
const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** Whether `address` is a public unicast address: IPv4 outside `notPublic`, IPv6 in 2000::/3 outside it. */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return !notPublic.check(address, 'ipv4');
  if (family !== 6) return false;
  const first = parseInt(address.split(':')[0] || '0', 16);
  return first >= 0x2000 && first <= 0x3fff && !notPublic.check(address, 'ipv6');
}

function isLoopbackAddress(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && loopback.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

const loopbackNames: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '[::1]']);
const redirects: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

async function systemResolve(host: string): Promise<readonly ResolvedAddress[]> {
  const found = await dnsLookup(host, { all: true, verbatim: true });
  return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
}

/** A header's single value. */
function header(response: IncomingMessage, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The SSRF-safe DocumentFetcher of the Node entry point: each URL's host is resolved once, every
 * address checked, and the connection made to the checked address (a `lookup` that answers with
 * it), so that a DNS answer cannot change between the check and the connection.
 */
export function nodeDocumentFetcher(options: NodeDocumentFetcherOptions): DocumentFetcher {
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxBytes = options.maxBytes ?? 5120;
  const maxRedirects = options.maxRedirects ?? 3;
  const resolve = options.resolve ?? systemResolve;
  // Node's `ca` replaces the system's roots: the extra one is added to them, and only for loopback.
  const loopbackCa =
    options.allowHttpLoopback && options.loopbackCa !== undefined
      ? [...rootCertificates, options.loopbackCa]
      : undefined;

  /** The address to connect to for `url`, after every check; throws DocumentFetchError. */
  const addressFor = async (url: URL): Promise<ResolvedAddress> => {
    const devLoopback =
      options.allowHttpLoopback &&
      (url.protocol === 'http:' || (url.protocol === 'https:' && loopbackCa !== undefined)) &&
      loopbackNames.has(url.hostname);
    if (url.protocol !== 'https:' && !devLoopback) {
      throw new DocumentFetchError(
        options.allowHttpLoopback
          ? `${url.href} is not an https URL (plain http is allowed only to 127.0.0.1, localhost or [::1])`
          : `${url.href} is not an https URL`,
      );
    }
    if (url.username !== '' || url.password !== '') throw new DocumentFetchError(`${url.href} contains userinfo`);
    const literal = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    let addresses: readonly ResolvedAddress[];
    if (isIP(literal) !== 0) addresses = [{ address: literal, family: isIP(literal) === 6 ? 6 : 4 }];
    else {
      try {
        addresses = await resolve(literal);
      } catch {
        throw new DocumentFetchError(`the host ${url.hostname} could not be resolved`);
      }
    }
    if (addresses.length === 0) throw new DocumentFetchError(`the host ${url.hostname} could not be resolved`);
    // Every address must pass, not just the first: a resolver may order them differently next time.
    const allowed = devLoopback ? isLoopbackAddress : isPublicAddress;
    if (!addresses.every((a) => allowed(a.address))) {
      throw new DocumentFetchError(
        devLoopback
          ? `the host ${url.hostname} does not resolve to a loopback address`
          : `the host ${url.hostname} resolves to an address that is not public`,
      );
    }
    return addresses[0] as ResolvedAddress;
  };

  /** One GET of `url` at `address`: the response with its body, or a redirect's location. */
  const once = (
    url: URL,
    address: ResolvedAddress,
    signal: AbortSignal,
  ): Promise<FetchedDocument & { location?: string }> =>
    new Promise((resolvePromise, reject) => {
      const pinned: LookupFunction = (_host, lookupOptions, callback) => {
        if (lookupOptions.all === true) callback(null, [{ address: address.address, family: address.family }]);
        else callback(null, address.address, address.family);
      };
      const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
        url,
        {
          method: 'GET',
          lookup: pinned,
          signal,
          // Only a request to a loopback host (which the address check held to loopback) trusts it.
          ...(loopbackCa !== undefined && url.protocol === 'https:' && loopbackNames.has(url.hostname)
            ? { ca: loopbackCa }
            : {}),
          headers: { accept: 'application/json', 'user-agent': 'Baton (client metadata document fetch)' },
        },
        (response) => {
          const status = response.statusCode ?? 0;
          if (redirects.has(status)) {
            response.resume();
            const location = header(response, 'location');
            if (location === undefined) reject(new DocumentFetchError(`a redirect (${status}) without a Location`));
            else resolvePromise({ status, contentType: undefined, cacheControl: undefined, body: '', location });
            return;
          }
          const declared = Number(header(response, 'content-length'));
          if (Number.isFinite(declared) && declared > maxBytes) {
            request.destroy();
            reject(new DocumentFetchError(`the response is larger than ${maxBytes} bytes`));
            return;
          }
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > maxBytes) {
              request.destroy();
              reject(new DocumentFetchError(`the response is larger than ${maxBytes} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          response.on('end', () =>
            resolvePromise({
              status,
              contentType: header(response, 'content-type'),
              cacheControl: header(response, 'cache-control'),
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          response.on('error', () => reject(new DocumentFetchError('the response was cut off')));
        },
      );
      request.on('error', (error) =>
        reject(
          signal.aborted
            ? new DocumentFetchError(`no answer within ${timeoutMs} ms`)
            : new DocumentFetchError(`the connection failed (${(error as NodeJS.ErrnoException).code ?? 'error'})`),
        ),
      );
      request.end();
    });

  return {
    async get(start) {
      const signal = AbortSignal.timeout(timeoutMs);
      const timedOut = new Promise<never>((_, reject) =>
        signal.addEventListener('abort', () => reject(new DocumentFetchError(`no answer within ${timeoutMs} ms`))),
      );
      timedOut.catch(() => undefined);
      let url: URL;
      try {
        url = new URL(start);
      } catch {
        throw new DocumentFetchError('the URL is not valid');
      }
      for (let hop = 0; ; hop++) {
        const address = await Promise.race([addressFor(url), timedOut]);
        const response = await Promise.race([once(url, address, signal), timedOut]);
        if (response.location === undefined) return response;
        if (hop >= maxRedirects) throw new DocumentFetchError(`more than ${maxRedirects} redirects`);
        try {
          url = new URL(response.location, url);
        } catch {
          throw new DocumentFetchError('a redirect to an invalid URL');
        }
      }
    },
  };
}
