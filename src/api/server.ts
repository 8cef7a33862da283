/**
 * The HTTP server around the express app: Node's timeouts set so that a slow or idle client holds a
 * connection for a bounded time, and requests Node refuses before express sees them (a malformed request
 * line, oversized headers, a request that took too long) answered with problem+json like every other error.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type express from 'express';

export interface ServerLimits {
  /** The whole request, headers and body, must arrive within this (a slow body is cut off). */
  readonly requestTimeoutMs: number;
  readonly headersTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  readonly keepAliveTimeoutMs: number;
}

export const DEFAULT_SERVER_LIMITS: ServerLimits = { requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000 };

export function createHttpServer(app: express.Express, limits: ServerLimits = DEFAULT_SERVER_LIMITS): Server {
  const server = createServer({
    requestTimeout: limits.requestTimeoutMs,
    headersTimeout: limits.headersTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node checks request and header timeouts on this period; the default (30 s) would stretch a 10 s bound.
    connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
  }, (req, res) => app(req as express.Request, res as express.Response, (error?: unknown) => answerUnrouted(req, res, error)));
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => answerClientError(error, socket));
  return server;
}

/**
 * What express's router leaves to its final handler (an HTML page) instead of the app's own 404: a request
 * target it cannot parse as a path, such as the absolute form with a broken host (`GET http://[::1/api`).
 * The app's own not-found and error handlers answer everything the router can route.
 */
function answerUnrouted(req: IncomingMessage, res: ServerResponse, error: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // An error reaches here only if the app's own error handler failed.
  const body = JSON.stringify(error === undefined ? {
    type: 'urn:switchyard:problem:not-found', title: 'Not found', status: 404,
    detail: `no route for ${req.method} ${JSON.stringify(req.url)}: the request target is not a path this API serves (send it in origin form, e.g. /api/v1/executions)`,
  } : { type: 'urn:switchyard:problem:internal', title: 'Internal error', status: 500, detail: 'the engine failed to handle this request' });
  res.writeHead(error === undefined ? 404 : 500, { 'content-type': 'application/problem+json; charset=utf-8', 'content-length': Buffer.byteLength(body) }).end(body);
}

/** Node's default answers these in text/plain (or not at all); the API promises problem+json. */
function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable || error.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const [status, title, detail] = error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    ? [408, 'Request Timeout', 'the request (headers and body) did not arrive in time']
    : error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'the request headers are too large']
      : [400, 'Bad Request', `the request is not valid HTTP/1.1 (${error.code ?? 'parse error'})`];
  const body = JSON.stringify({ type: 'urn:switchyard:problem:bad-http-request', title, status, detail });
  socket.end(`HTTP/1.1 ${status} ${title}\r\ncontent-type: application/problem+json; charset=utf-8\r\n`
    + `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}
