/**
 * Loopback addresses: what only the machine itself can reach. The listen address of a key-less engine, the
 * Host a request to it must name, the hosts a model key may be sent to over plain HTTP.
 */
import { isIP } from 'node:net';

/** `localhost`, 127.0.0.0/8 or ::1 (bracketed or not); anything else (0.0.0.0, a LAN address, a name) may be reachable by others. */
export function isLoopback(host: string): boolean {
  const name = host.toLowerCase();
  if (name === 'localhost' || name === '::1' || name === '[::1]') return true;
  return isIP(name) === 4 && name.startsWith('127.');
}

/** The host of a Host header (`name`, `name:port`, `[v6]:port`), or undefined when it is not one. */
export function hostOfHeader(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(header.trim());
  return match?.[1];
}

/**
 * Why a credential must not be sent to `url`: plain HTTP to a host that is not loopback (anyone on the
 * path reads it). undefined when it may: HTTPS, or HTTP that never leaves the machine.
 */
export function plainHttpKeyProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'http:' || isLoopback(parsed.hostname)) return undefined;
  return `${parsed.origin} is plain HTTP to a host that is not loopback, and a model API key would be sent there in clear: use https://, or send no key`;
}
