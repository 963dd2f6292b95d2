import type { Context } from 'hono';
import { OAuthError } from '../core/errors.js';

/**
 * Reads a request body as UTF-8 text of at most `maxBytes`, throwing a 413 `invalid_request`
 * beyond that. A runtime adapter may read it from its own request object, skipping the cost of
 * a Fetch API body stream.
 */
export type BodyReader = (c: Context, maxBytes: number) => Promise<string>;

/** The refusal of a body over the limit. */
export const bodyTooLarge = (maxBytes: number): OAuthError =>
  new OAuthError('invalid_request', `request body is larger than ${maxBytes} bytes`, { status: 413 });

/** Whether a declared Content-Length already exceeds the limit, so nothing needs reading. */
export const declaredTooLarge = (contentLength: string | undefined, maxBytes: number): boolean =>
  contentLength !== undefined && Number(contentLength) > maxBytes;

/** The portable reader: the Fetch API request's body stream, counted as it arrives. */
export const fetchBodyReader: BodyReader = async (c, maxBytes) => {
  if (declaredTooLarge(c.req.header('content-length'), maxBytes)) throw bodyTooLarge(maxBytes);
  const body = c.req.raw.body;
  if (body === null) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw bodyTooLarge(maxBytes);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.byteLength;
  }
  return new TextDecoder().decode(all);
};
