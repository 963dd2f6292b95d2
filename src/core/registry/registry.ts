import type { AuthorizationDetail } from '../tokens/authorization-details.js';
import type { KeyResolver } from '../ports.js';
import type { ClientAuthMethod } from './schema.js';
import type { UserRole } from './roles.js';

export interface Tenant {
  readonly id: string;
  readonly name: string;
  /** Clients identified by a client ID metadata document URL. */
  readonly clientIdMetadataDocuments: {
    readonly enabled: boolean;
    /** Hosts (or `*.domain`) whose documents are accepted; undefined accepts any host. */
    readonly allowedHosts: readonly string[] | undefined;
  };
  /** RFC 7591 dynamic client registration. */
  readonly dynamicClientRegistration: {
    readonly mode: 'off' | 'open' | 'initial_access_token';
    readonly unusedClientTtlSeconds: number;
  };
}

export interface TrustedIssuer {
  readonly issuer: string;
  readonly tenant: string;
  readonly audiences: readonly string[];
  readonly algorithms: readonly string[];
  readonly resolve: KeyResolver;
}

/** An issuer of workload identity tokens (Kubernetes, SPIFFE, CI OIDC) whose subjects prove agents. */
export interface WorkloadIssuer {
  readonly issuer: string;
  readonly tenant: string;
  readonly audiences: readonly string[];
  readonly algorithms: readonly string[];
  readonly typ: string | undefined;
  readonly resolve: KeyResolver;
  /** In declared order; the first whose pattern matches the token's `sub` names the agent. */
  readonly subjects: readonly { readonly pattern: RegExp; readonly agent: string }[];
}

export interface Agent {
  readonly id: string;
  readonly tenant: string;
  readonly name: string;
  /** The accountable user: a user's `sub` in the agent's tenant. */
  readonly owner: string;
  /** When the agent stops existing (ms since the epoch, by the service clock); undefined: never. */
  readonly expiresAt: number | undefined;
  /** The most this agent may ever hold; undefined means no limit of its own. */
  readonly scope: ReadonlySet<string> | undefined;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly resolve: KeyResolver;
}

export interface ResourceServer {
  readonly id: string;
  readonly tenant: string;
  readonly name: string;
  readonly audience: string;
  readonly scopes: readonly string[];
  readonly actions: readonly string[];
}

/** Anyone who authenticates at the token endpoint: a client, an agent or a resource server. */
export interface Caller {
  readonly kind: 'client' | 'agent' | 'resource_server';
  readonly id: string;
  readonly tenant: string;
  readonly authMethod: ClientAuthMethod;
  readonly secretSha256: Uint8Array | undefined;
  readonly resolve: KeyResolver | undefined;
  readonly grantTypes: ReadonlySet<string>;
  /** Scopes it may request for itself (client credentials); undefined means none beyond its audience. */
  readonly scope: ReadonlySet<string> | undefined;
  /** Agents it may present as actor in a token exchange. */
  readonly agents: ReadonlySet<string>;
  /** The most `authorization_details` it may request for itself (client credentials). */
  readonly authorizationDetails: readonly AuthorizationDetail[];
  /** Redirect URIs of the code flow (a loopback one matches any port: redirectUriMatches). */
  readonly redirectUris: readonly string[];
  readonly name: string;
  /** When a client registered itself (RFC 7591), ms since the epoch; undefined for every other caller. */
  readonly registeredAt: number | undefined;
}

/** A built-in user (password sign-in of the embedded default). */
export interface RegisteredUser {
  readonly tenant: string;
  readonly sub: string;
  readonly name: string;
  readonly passwordScrypt: string;
  /** Roles in the audit explorer (auditor, operator); none by default. */
  readonly roles: readonly UserRole[];
}

/** A principal refused every new grant until the suspension is lifted. */
export interface Suspension {
  readonly tenant: string;
  readonly kind: 'agent' | 'client' | 'user';
  readonly id: string;
  readonly reason: string | undefined;
  /** RFC 3339, as the registry says. */
  readonly since: string;
}

/** The registry compiled for lookups: every key imported, every reference checked. */
export interface Registry {
  readonly tenants: ReadonlyMap<string, Tenant>;
  readonly issuers: ReadonlyMap<string, TrustedIssuer>;
  /** Workload identity issuers by their `iss`. */
  readonly workloadIssuers: ReadonlyMap<string, WorkloadIssuer>;
  readonly agents: ReadonlyMap<string, Agent>;
  readonly callers: ReadonlyMap<string, Caller>;
  readonly resourceServers: ReadonlyMap<string, ResourceServer>;
  /** Resource servers by their audience URI. */
  readonly audiences: ReadonlyMap<string, ResourceServer>;
  /** Built-in users by tenant and sub (see `userKey`). */
  readonly users: ReadonlyMap<string, RegisteredUser>;
  /** Suspended agents, clients and users by tenant, kind and id (see `suspensionKey`). */
  readonly suspensions: ReadonlyMap<string, Suspension>;
}

/** The key of a built-in user in `Registry.users`. */
export const userKey = (tenant: string, sub: string): string => `${tenant}\u0000${sub}`;

/** The key of a suspension in `Registry.suspensions`. */
export const suspensionKey = (tenant: string, kind: Suspension['kind'], id: string): string =>
  `${tenant}\u0000${kind}\u0000${id}`;
