// The plain message shapes the HTTP client, the faces and the serve machinery
// exchange (see /work/coord/http-contract.md). Face-neutral: no resource
// handles, no wasi types beyond Fields and the error-code.

import type { Fields } from './fields.ts';

export interface Body {
  /** The content, pulled with backpressure; null = empty body. */
  stream: AsyncIterable<Uint8Array> | null;
  /** Settles after the stream ended: the trailers (or null); rejects with HttpError when the body failed. */
  trailers: Promise<Fields | null>;
}

export interface RequestOptionsData {
  connectTimeoutNs?: bigint;
  firstByteTimeoutNs?: bigint;
  betweenBytesTimeoutNs?: bigint;
}

export interface RequestData {
  /** Exact method text (e.g. 'GET', or an extension method). */
  method: string;
  /** 'HTTP', 'HTTPS' or another scheme; null = none. */
  scheme: string | null;
  authority: string | null;
  pathWithQuery: string | null;
  headers: Fields;
  body: Body;
  options: RequestOptionsData;
}

export interface ResponseData {
  status: number;
  headers: Fields;
  body: Body;
}

export const EMPTY_BODY_STREAM: AsyncIterable<Uint8Array> | null = null;
