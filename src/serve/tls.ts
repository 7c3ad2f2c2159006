// `--tls-cert FILE --tls-key FILE`: the files are read and checked before
// anything binds, then one node:http2 secure server answers both h2 and
// http/1.1 (ALPN, allowHTTP1) with the same listener; node.ts tells the two
// apart per request (src/serve/http2.ts maps h2 streams).

// node:tls and node:http2 are imported when used: the CLI bundle keeps this
// module in the chunk a plain `weir run` loads.

import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2SecureServer } from 'node:http2';

export class TlsSetupError extends Error {
  override name = 'TlsSetupError';
  readonly code = 'WEIR_TLS_SETUP';
}

/**
 * Reads and checks the PEM certificate chain and private key before anything
 * binds: a missing file, a file that is not PEM, or a key that does not match
 * the certificate is a TlsSetupError naming the flag.
 */
export async function loadTlsFiles(certFile: string, keyFile: string): Promise<{ cert: Buffer; key: Buffer }> {
  const read = (file: string, flag: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new TlsSetupError(`${flag} ${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  };
  const cert = read(certFile, '--tls-cert');
  const key = read(keyFile, '--tls-key');
  if (!/-----BEGIN [A-Z0-9 ]*CERTIFICATE-----/.test(cert.toString('latin1'))) {
    throw new TlsSetupError(`--tls-cert ${certFile}: not a PEM certificate`);
  }
  if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(key.toString('latin1'))) {
    throw new TlsSetupError(`--tls-key ${keyFile}: not a PEM private key`);
  }
  const { createSecureContext } = await import('node:tls');
  try {
    createSecureContext({ cert, key });
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    const why = /KEY_VALUES_MISMATCH|key values mismatch/i.test(msg) ? 'the private key does not match the certificate' : msg;
    throw new TlsSetupError(`--tls-cert ${certFile} / --tls-key ${keyFile}: ${why}`);
  }
  return { cert, key };
}

/** Streams one h2 connection may have open at once. */
export const H2_MAX_CONCURRENT_STREAMS = 100;

/** An HTTPS server speaking h2 and http/1.1 (ALPN) with the listener for both. */
export async function createHttpsServer(
  tls: { cert: Buffer; key: Buffer },
  listener: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Http2SecureServer> {
  const { createSecureServer } = await import('node:http2');
  // 100 concurrent streams per h2 connection (node's default is unbounded): a
  // client cannot open more requests on one connection than an h1 client
  // could on 100 connections.
  return createSecureServer({ cert: tls.cert, key: tls.key, allowHTTP1: true, ALPNProtocols: ['h2', 'http/1.1'], settings: { maxConcurrentStreams: H2_MAX_CONCURRENT_STREAMS } },
    listener as unknown as Parameters<typeof createSecureServer>[1]);
}
