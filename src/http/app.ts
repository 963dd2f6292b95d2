import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { echo } from '../core/errors.js';
import { inSpan } from '../core/telemetry.js';
import { traceparentOf } from '../core/trace-context.js';
import type { AppDeps } from './app-deps.js';
import { errorResponse } from './errors.js';
import { requestIdOf, type Env } from './request.js';
import { callerSpan, incomingContext, requestTraceOf, tracedService } from './trace-context.js';
import { adminRoutes } from './routes/admin.js';
import { agentRoutes } from './routes/agents.js';
import { auditSinkRoutes } from './routes/audit-sinks.js';
import { auditRoutes } from './routes/audit.js';
import { browserRoutes } from './routes/browser.js';
import { explorerRoutes } from './routes/explorer.js';
import { decisionRoutes } from './routes/decisions.js';
import { operationRoutes } from './routes/operations.js';
import { registrationRoutes } from './routes/registration.js';
import { registryRoutes } from './routes/registry.js';
import { tokenRoutes } from './routes/token.js';
import { wellKnownRoutes } from './routes/well-known.js';

/** Builds the Baton HTTP application from its dependencies; no runtime APIs. */
export function createApp(deps: AppDeps): Hono<Env> {
  const { service, logger } = deps;
  const app = new Hono<Env>();

  app.use(async (c, next) => {
    const started = performance.now();
    // Set before the answer is made, so it is part of the answer's own headers (set afterwards,
    // the Node adapter would have to rebuild every answer as a full Response).
    c.header('X-Content-Type-Options', 'nosniff');
    // A valid `traceparent` continues the caller's trace: with a tracer SDK, the request span is a child of its span.
    const parent = incomingContext(c.req.raw.headers);
    await inSpan(
      'baton.request',
      { 'http.request.method': c.req.method },
      async (span) => {
        const requestId = requestIdOf(c);
        const requestTrace = requestTraceOf(span, callerSpan(parent), requestId);
        // Names Baton's span, so a caller can join its own logs to this request's audit entries.
        c.header('traceparent', traceparentOf(requestTrace));
        if (requestTrace.traceState !== undefined) c.header('tracestate', requestTrace.traceState);
        c.set('service', tracedService(service, requestTrace));
        await next();
        const route = c.req.routePath;
        const seconds = (performance.now() - started) / 1000;
        span.setAttributes({ 'http.route': route, 'http.response.status_code': c.res.status });
        service.metrics.request(route, c.req.method, c.res.status, seconds);
        if (requestId !== null) c.header('X-Request-ID', requestId);
        const refusal = c.get('refusal');
        logger.info('request', {
          trace_id: requestTrace.traceId,
          span_id: requestTrace.spanId,
          ...(requestTrace.parentSpanId === null ? {} : { parent_span_id: requestTrace.parentSpanId }),
          request_id: requestId,
          method: c.req.method,
          route,
          status: c.res.status,
          duration_ms: Math.round(seconds * 100_000) / 100,
          ...c.get('who'),
          ...(refusal === undefined ? {} : { error: refusal.error, detail: refusal.detail }),
        });
      },
      parent,
    );
  });

  // OAuth clients that run in a web page (an MCP client in a browser) read the metadata and call
  // the token, registration and revocation endpoints from another origin. None of them rests on
  // cookies, so any origin may; the browser side of /oauth2/authorize and the APIs stay same-origin.
  const crossOrigin = cors({
    origin: '*',
    allowMethods: ['GET', 'POST'],
    allowHeaders: ['Authorization', 'Content-Type', 'MCP-Protocol-Version'],
    exposeHeaders: ['WWW-Authenticate', 'Retry-After'],
    maxAge: 600,
  });
  for (const path of ['/.well-known/*', '/oauth2/token', '/oauth2/register', '/oauth2/revoke'])
    // Only a browser sends Origin; the middleware touches c.res early, which costs every request.
    app.use(path, (c, next) => (c.req.header('origin') === undefined ? next() : crossOrigin(c, next)));

  // Each family names how its errors are answered and which callers it admits (see errors.ts, callers.ts).
  app.route('/', wellKnownRoutes(deps));
  app.route('/', tokenRoutes(deps));
  app.route('/', registrationRoutes(deps));
  app.route('/', browserRoutes(deps));
  app.route('/', decisionRoutes(deps));
  app.route('/', adminRoutes(deps));
  app.route('/', registryRoutes(deps));
  app.route('/', agentRoutes(deps));
  app.route('/', explorerRoutes(deps));
  app.route('/', auditRoutes(deps));
  app.route('/', auditSinkRoutes(deps));
  app.route('/', operationRoutes(deps));

  app.notFound((c) =>
    c.json(
      { error: 'not_found', error_description: `no route for ${echo(c.req.method, 16)} ${echo(c.req.path, 120)}` },
      404,
    ),
  );
  app.onError((error, c) => errorResponse(c, error, deps));
  return app;
}
