/**
 * The HTTP server's telemetry, made by the app itself rather than by the http and express
 * auto-instrumentations (cheaper: BENCHMARKS.md, 2026-12-03): per request one SERVER span (the conventions' name `{method} {route}` and attributes, child of
 * an incoming W3C traceparent) and one point of http.server.request.duration, both through the recorder.
 *
 * `traceRequests` goes first in the app; everything after it runs in the span's context (AsyncLocalStorage).
 * The instrumentation also bound every listener of the request and response to that context; nothing needs
 * it here: a handler reached after the body parser, even with the body arriving after the headers, runs in
 * the request's context (test/engine/workflow.test.ts checks that case).
 */
import { context } from '@opentelemetry/api';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Telemetry } from '../telemetry/recorder.ts';

/** Probes are polled, not served: neither a span nor a point (as with the instrumentation before). */
const PROBES = new Set(['/healthz', '/readyz']);

export function traceRequests(telemetry: Telemetry): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (PROBES.has(req.path)) return next();
    const served = telemetry.startHttpServerRequest(req.method, req.path, req.headers, req.socket && 'encrypted' in req.socket ? 'https' : 'http', req.httpVersion);
    res.once('close', () => {
      // Express keeps the matched route on the request (also when its handler threw); none for a 404 fall-through.
      const route = req.route?.path === undefined ? undefined : `${req.baseUrl}${String(req.route.path)}`;
      telemetry.endHttpServerRequest(served, res.statusCode, route, res.writableFinished);
    });
    context.with(served.context, next);
  };
}
