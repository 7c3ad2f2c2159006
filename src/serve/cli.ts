// `weir serve`: compile the components, check the world and every link, make
// one instance (so a broken component fails before the port is bound), bind,
// print `Serving HTTP on http://ADDR:PORT/` as the first stderr line, and on
// SIGINT/SIGTERM stop accepting, finish the requests in flight and exit 0
// (a second signal exits at once with 130).

import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { basename } from 'node:path';
import type { Component } from '../host/component.ts';
import type { WasiConfig } from '../wasi/index.ts';
import { ServeMachine, ServeSetupError, errText } from './machine.ts';
import { nodeListener } from './node.ts';
import { ServeExtras, type ServeExtrasOptions } from './cli-extras.ts'; // H9: TLS, metrics, access log
import { createHttpsServer } from './tls.ts';

export interface ServeCliOptions extends ServeExtrasOptions {
  files: string[];
  components: Component[];
  host: string;
  port: number;
  wasi: WasiConfig;
  maxInstanceReuseCount?: number;
  maxInstanceConcurrentReuseCount?: number;
  idleInstanceTimeoutMs?: number;
  verbose: boolean;
}

const log = (l: string): void => { process.stderr.write(`${l}\n`); };

export async function serveCli(opts: ServeCliOptions): Promise<number> {
  // H9 hook: TLS files are checked before anything is instantiated or bound.
  let extras: ServeExtras;
  try {
    extras = await ServeExtras.create(opts, log);
  } catch (e) {
    log(`weir: ${errText(e)}`);
    return 1;
  }
  let machine: ServeMachine;
  try {
    machine = new ServeMachine(opts.components.map((component, i) => ({ name: basename(opts.files[i]), component })), {
      wasi: opts.wasi,
      ...(opts.maxInstanceReuseCount !== undefined ? { maxInstanceReuseCount: opts.maxInstanceReuseCount } : {}),
      ...(opts.maxInstanceConcurrentReuseCount !== undefined ? { maxInstanceConcurrentReuseCount: opts.maxInstanceConcurrentReuseCount } : {}),
      ...(opts.idleInstanceTimeoutMs !== undefined ? { idleInstanceTimeoutMs: opts.idleInstanceTimeoutMs } : {}),
      log,
      ...extras.machineConfig(), // H9 hook
    });
    extras.attach(machine);
    machine.warm();
  } catch (e) {
    log(`weir: ${e instanceof ServeSetupError ? e.message : `${basename(opts.files[0])}: cannot instantiate: ${errText(e)}`}`);
    if (opts.verbose && e instanceof Error && e.stack) log(e.stack);
    return 1;
  }
  // A bug in a request's bookkeeping must cost that request, not the server.
  process.on('unhandledRejection', (e) => { log(`weir: internal error (request abandoned): ${errText(e)}`); });
  // H9 hook: with --tls-cert/--tls-key one node:http2 secure server answers h2 and http/1.1.
  const listener = extras.listener(nodeListener(machine, log));
  const server: Server = extras.tls ? await createHttpsServer(extras.tls, listener) as unknown as Server : createServer({ keepAlive: true }, listener);
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    s.setNoDelay(true);
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  try {
    await extras.listenMetrics(); // H9 hook
  } catch (e) {
    log(`weir: cannot listen on --metrics-addr ${opts.metricsAddr!.host}:${opts.metricsAddr!.port}: ${(e as NodeJS.ErrnoException).code ?? errText(e)}`);
    await machine.close();
    return 1;
  }
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => { server.off('error', reject); resolve(); });
    });
  } catch (e) {
    log(`weir: cannot listen on ${opts.host}:${opts.port}: ${(e as NodeJS.ErrnoException).code ?? errText(e)}`);
    extras.close();
    await machine.close();
    return 1;
  }
  const addr = server.address();
  const port = addr && typeof addr === 'object' ? addr.port : opts.port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  // H9 hook: TLS mode says HTTPS; the metrics URL (if any) is the second line.
  process.stderr.write(extras.tls ? `Serving HTTPS on https://${host}:${port}/\n` : `Serving HTTP on http://${host}:${port}/\n`);
  const metricsUrl = extras.metricsUrl();
  if (metricsUrl) process.stderr.write(`Metrics on ${metricsUrl}\n`);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) { log(`weir: ${signal} again: exiting now`); resolve(130); return; }
      stopping = true;
      if (opts.verbose) log(`weir: ${signal}: finishing ${machine.pending} request(s) in flight`);
      server.close();
      server.closeIdleConnections?.(); // H9: not on the TLS (http2) server
      void machine.close().then(() => {
        extras.close(); // H9: after the last request's access-log line
        for (const s of sockets) s.destroy();
        resolve(0);
      });
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
}
