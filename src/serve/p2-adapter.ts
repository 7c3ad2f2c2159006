// The HandlerAdapter for a WASI 0.2 `wasi:http/incoming-handler` export, over
// H4's serveP2Request (src/wasi/p2/http-serve.ts). One request at a time per
// instance; the response is known once the guest calls response-outparam.set.

import { Fields, type FieldEntries } from '../wasi/core/http/fields.ts';
import { findIncomingHandler, serveP2Request } from '../wasi/p2/http-serve.ts';
import type { HandleCall, HandlerAdapter, ServeRequest } from './adapter.ts';

export function p2Adapter(exports: Record<string, any>): HandlerAdapter | null {
  const handle = findIncomingHandler(exports);
  if (!handle) return null;
  return {
    kind: 'p2',
    maxConcurrent: 1,
    handle(request: ServeRequest): HandleCall {
      const trailers = request.body.trailers.then((t) => (t ? t.copyAll() : null));
      trailers.catch(() => {}); // a failed request body is the guest's to see, not an unhandled rejection
      const { response, done } = serveP2Request(handle, {
        method: request.method, scheme: request.scheme, authority: request.authority, pathWithQuery: request.pathWithQuery,
        headers: request.headers.copyAll(),
        body: { stream: request.body.stream, trailers },
      });
      return {
        response: response.then((r) => ({
          status: r.status,
          headers: Fields.fromTrusted(r.headers as FieldEntries, true),
          body: { stream: r.body.stream, trailers: r.body.trailers.then((t) => (t ? Fields.fromTrusted(t, true) : null)) },
          transmitted: () => {},
        })),
        done,
      };
    },
  };
}
