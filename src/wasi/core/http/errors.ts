// The wasi:http `error-code` variant (identical in 0.2 and 0.3) as JS values in
// the shape Weir's canonical ABI lifts and lowers variants: `{ tag, val? }`,
// records with lowerCamelCase keys, `option<T>` as `T | undefined`.
//
// `errorCodeFrom` maps host failures (Node socket / DNS / TLS errors, our own
// timeouts) to one case each. The guest only ever sees the case: never a host
// message, address or hostname.

export interface DnsErrorPayload { rcode?: string; infoCode?: number }
export interface TlsAlertReceivedPayload { alertId?: number; alertMessage?: string }
export interface FieldSizePayload { fieldName?: string; fieldSize?: number }

export type ErrorCode =
  | { tag: 'DNS-timeout' }
  | { tag: 'DNS-error'; val: DnsErrorPayload }
  | { tag: 'destination-not-found' }
  | { tag: 'destination-unavailable' }
  | { tag: 'destination-IP-prohibited' }
  | { tag: 'destination-IP-unroutable' }
  | { tag: 'connection-refused' }
  | { tag: 'connection-terminated' }
  | { tag: 'connection-timeout' }
  | { tag: 'connection-read-timeout' }
  | { tag: 'connection-write-timeout' }
  | { tag: 'connection-limit-reached' }
  | { tag: 'TLS-protocol-error' }
  | { tag: 'TLS-certificate-error' }
  | { tag: 'TLS-alert-received'; val: TlsAlertReceivedPayload }
  | { tag: 'HTTP-request-denied' }
  | { tag: 'HTTP-request-length-required' }
  | { tag: 'HTTP-request-body-size'; val?: bigint }
  | { tag: 'HTTP-request-method-invalid' }
  | { tag: 'HTTP-request-URI-invalid' }
  | { tag: 'HTTP-request-URI-too-long' }
  | { tag: 'HTTP-request-header-section-size'; val?: number }
  | { tag: 'HTTP-request-header-size'; val?: FieldSizePayload }
  | { tag: 'HTTP-request-trailer-section-size'; val?: number }
  | { tag: 'HTTP-request-trailer-size'; val: FieldSizePayload }
  | { tag: 'HTTP-response-incomplete' }
  | { tag: 'HTTP-response-header-section-size'; val?: number }
  | { tag: 'HTTP-response-header-size'; val: FieldSizePayload }
  | { tag: 'HTTP-response-body-size'; val?: bigint }
  | { tag: 'HTTP-response-trailer-section-size'; val?: number }
  | { tag: 'HTTP-response-trailer-size'; val: FieldSizePayload }
  | { tag: 'HTTP-response-transfer-coding'; val?: string }
  | { tag: 'HTTP-response-content-coding'; val?: string }
  | { tag: 'HTTP-response-timeout' }
  | { tag: 'HTTP-upgrade-failed' }
  | { tag: 'HTTP-protocol-error' }
  | { tag: 'loop-detected' }
  | { tag: 'configuration-error' }
  | { tag: 'internal-error'; val?: string };

/** A failure that reaches the guest as a wasi:http error-code. The message is the case name only. */
export class HttpError extends Error {
  override name = 'HttpError';
  readonly code: ErrorCode;
  constructor(code: ErrorCode) {
    super(code.tag);
    this.code = code;
  }
}

export const httpError = (code: ErrorCode): HttpError => new HttpError(code);

// Node / OpenSSL error codes of a failed certificate check.
const TLS_CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID', 'CERT_REVOKED', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH', 'INVALID_CA', 'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'CERT_CHAIN_TOO_LONG',
]);

/**
 * Map a host failure to one error-code case. An HttpError keeps its code;
 * anything unrecognised becomes `internal-error` without the host message.
 */
export function errorCodeFrom(e: unknown): ErrorCode {
  if (e instanceof HttpError) return e.code;
  const code = (e as { code?: unknown } | null)?.code;
  const c = typeof code === 'string' ? code : '';
  switch (c) {
    case 'ECONNREFUSED': return { tag: 'connection-refused' };
    case 'ECONNRESET': case 'EPIPE': case 'ECONNABORTED': case 'ERR_STREAM_PREMATURE_CLOSE':
    case 'ERR_SOCKET_CLOSED':
      return { tag: 'connection-terminated' };
    case 'ETIMEDOUT': return { tag: 'connection-timeout' };
    case 'EHOSTUNREACH': return { tag: 'destination-IP-unroutable' };
    case 'ENETUNREACH': return { tag: 'destination-IP-unroutable' };
    case 'EADDRNOTAVAIL': return { tag: 'destination-unavailable' };
    case 'EACCES': case 'EPERM': return { tag: 'destination-IP-prohibited' };
    // getaddrinfo failures: the rcode names the resolver's answer, not the host.
    case 'ENOTFOUND': return { tag: 'DNS-error', val: { rcode: 'NXDOMAIN' } };
    case 'EAI_AGAIN': return { tag: 'DNS-timeout' };
    case 'ENODATA': return { tag: 'DNS-error', val: { rcode: 'NODATA' } };
    case 'ESERVFAIL': return { tag: 'DNS-error', val: { rcode: 'SERVFAIL' } };
    case 'EREFUSED': return { tag: 'DNS-error', val: { rcode: 'REFUSED' } };
    case 'EAI_FAIL': case 'EAI_NONAME': case 'EAI_NODATA':
      return { tag: 'DNS-error', val: {} };
    // node:http parser and framing errors
    case 'HPE_INVALID_CONSTANT': case 'HPE_INVALID_VERSION': case 'HPE_INVALID_STATUS':
    case 'HPE_INVALID_HEADER_TOKEN': case 'HPE_INVALID_CHUNK_SIZE': case 'HPE_LF_EXPECTED':
    case 'HPE_CR_EXPECTED': case 'HPE_UNEXPECTED_CONTENT_LENGTH': case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING': case 'HPE_INVALID_EOF_STATE': case 'HPE_STRICT':
      return { tag: 'HTTP-protocol-error' };
    case 'HPE_HEADER_OVERFLOW': return { tag: 'HTTP-response-header-section-size' };
    case 'ERR_INVALID_HTTP_TOKEN': case 'ERR_INVALID_CHAR': case 'ERR_HTTP_INVALID_HEADER_VALUE':
      return { tag: 'HTTP-request-header-size' };
    case 'ERR_UNESCAPED_CHARACTERS': case 'ERR_INVALID_URL': return { tag: 'HTTP-request-URI-invalid' };
    case 'ERR_TLS_CERT_ALTNAME_INVALID': return { tag: 'TLS-certificate-error' };
  }
  if (TLS_CERT_CODES.has(c)) return { tag: 'TLS-certificate-error' };
  if (c.startsWith('ERR_SSL_') || c.startsWith('ERR_TLS_') || c.startsWith('EPROTO')) {
    const alert = /SSLV3_ALERT_|TLSV1_ALERT_/.test(c);
    return alert ? { tag: 'TLS-alert-received', val: {} } : { tag: 'TLS-protocol-error' };
  }
  if (c.startsWith('HPE_')) return { tag: 'HTTP-protocol-error' };
  return { tag: 'internal-error' };
}
