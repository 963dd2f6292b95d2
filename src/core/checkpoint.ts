import { jwtVerify } from 'jose';
import { signJwt } from './jwt.js';
import type { KeyResolver, SigningKeys } from './ports.js';

const checkpointType = 'baton-checkpoint+jwt';

/** A signed statement of the log's size and head hash at a moment. */
export interface Checkpoint {
  readonly seq: number;
  readonly hash: string;
  readonly iat: number;
}

/** Signs a checkpoint (JWS, `typ: baton-checkpoint+jwt`) with Baton's current key. */
export async function signCheckpoint(keys: SigningKeys, issuer: string, head: { seq: number; hash: string }, now: Date): Promise<string> {
  return signJwt(keys, checkpointType, { seq: head.seq, hash: head.hash, iss: issuer, iat: Math.floor(now.getTime() / 1000) });
}

/** Verifies a checkpoint's signature against Baton's public keys; returns what it states. */
export async function verifyCheckpoint(resolve: KeyResolver, jws: string, issuer?: string): Promise<Checkpoint> {
  const { payload } = await jwtVerify(jws, resolve, { typ: checkpointType, algorithms: ['EdDSA', 'ES256'], ...(issuer === undefined ? {} : { issuer }) });
  if (typeof payload.seq !== 'number' || typeof payload.hash !== 'string' || typeof payload.iat !== 'number') throw new Error('checkpoint lacks seq, hash or iat');
  return { seq: payload.seq, hash: payload.hash, iat: payload.iat };
}
