import type { HttpBindings } from '@hono/node-server';
import { Buffer } from 'node:buffer';
import { invalidRequest } from '../core/errors.js';
import { bodyTooLarge, declaredTooLarge, fetchBodyReader, type BodyReader } from '../http/body.js';

/**
 * Reads the body straight from Node's IncomingMessage. Building the Fetch API request's body
 * stream instead costs as much CPU as the rest of a token request (see bench/README.md).
 * Requests without Node bindings (app.request() in tests) take the portable reader.
 */
export const nodeBodyReader: BodyReader = (c, maxBytes) => {
  const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming;
  if (incoming === undefined) return fetchBodyReader(c, maxBytes);
  if (declaredTooLarge(c.req.header('content-length'), maxBytes)) return Promise.reject(bodyTooLarge(maxBytes));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      incoming.off('data', onData).off('end', onEnd).off('error', onError).off('aborted', onError);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
      else {
        stop();
        // Drop the rest unread; the answer (413) can go out at once.
        incoming.resume();
        reject(bodyTooLarge(maxBytes));
      }
    };
    const onEnd = (): void => {
      stop();
      resolve(Buffer.concat(chunks, size).toString('utf8'));
    };
    const onError = (): void => {
      stop();
      reject(invalidRequest('the request body could not be read'));
    };
    incoming.on('data', onData).on('end', onEnd).on('error', onError).on('aborted', onError);
  });
};
