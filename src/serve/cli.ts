// `weir serve`: compile the components, check the world and every link, make
// one instance (so a broken component fails before the port is bound), bind,
// print `Serving HTTP on http://ADDR:PORT/` as the first stderr line, and on
// SIGINT/SIGTERM stop accepting, finish the requests in flight and exit 0
// (a second signal exits at once with 130).

import { createServer, type Server } from 'node:http';
import { basename } from 'node:path';
import type { Component } from '../host/component.ts';
import type { WasiConfig } from '../wasi/index.ts';
import { ServeMachine, ServeSetupError, errText } from './machine.ts';
import { nodeListener } from './node.ts';
import { ServeExtras, type ServeExtrasOptions } from './cli-extras.ts'; // H9: TLS, metrics, access log
import { createHttpsServer } from './tls.ts';
import { ConnectionTable } from './watchdog.ts';
import { IdleCollector } from './idle-gc.ts';
import { HandoverSocket, MovedConnections } from './handover.ts';
import { libc } from './libc.ts';
import { IdleSweep } from './idle.ts';
import type { MetricsSnapshot } from './metrics.ts';
import { MachineSwitch, ServeWatcher } from './watch.ts'; // H13: --watch
import { Socket, createServer as createNetServer } from 'node:net';
import type { InstanceLimits } from '../runtime/limits.ts';
import { ConnectionGate, LimitedHandler, applyTlsServerLimits, httpServerOptions, resolveLimits, type ServeLimits } from './limits.ts'; // H8
import { noteListening, takeSharedListener } from './shared-listener.ts';

export interface ServeCliOptions extends ServeExtrasOptions {
  files: string[];
  components: Component[];
  host: string;
  port: number;
  wasi: WasiConfig;
  maxInstanceReuseCount?: number;
  maxInstanceConcurrentReuseCount?: number;
  idleInstanceTimeoutMs?: number;
  /** H8: request-level limits (src/serve/limits.ts) and per-instance runtime limits. */
  limits?: ServeLimits;
  instanceLimits?: InstanceLimits;
  /** H13: --watch: reload when a served file changes; `compile` compiles one file as serve did at start. */
  watch?: boolean;
  compile?: (file: string, bytes: Uint8Array) => Component;
  /** --watch: the bytes `components` were compiled from (a worker's may be older than the files: it catches up at once). */
  sources?: Uint8Array[];
  verbose: boolean;
  /** Set when this runs in a worker thread of `--workers N` (src/cli/serve-workers.ts). */
  role?: WorkerRole;
}

/** What a worker thread of `weir serve --workers N` gets from its supervisor. */
export interface WorkerRole {
  /** 1…N (a standby worker gets its index when it is activated) */
  index: number;
  /** Set for a warm standby worker: resolves when the supervisor activates it (it then listens). */
  standby: Promise<void> | null;
  /** The port every worker listens on. */
  port: number;
  /** The supervisor's listening socket, shared (shared-listener.ts); null: listen on `port` with SO_REUSEPORT (the kernel spreads connections). */
  listener: SharedArrayBuffer | null;
  /** Process-wide counters (indexes: `GLOBAL` below). */
  global: Int32Array;
  /** This worker's share of the shared gates: [requests, connections held, requests, connections waited for] (returned by the supervisor if it dies), then its descriptor for the shared socket (shared-listener.ts HELD_LISTENER). */
  held: Int32Array;
  /** The watchdog's words for this worker (watchdog.ts); null with --cpu-timeout 0. */
  watchdog: SharedArrayBuffer | null;
  /** The mailbox of connections moved from stopped workers (handover.ts MovedConnections); null where none are moved. */
  moved: SharedArrayBuffer | null;
  /** Each served file's bytes as the supervisor has them: read at start, then the last version a --watch reload served (null where it could not read it: the worker reads the file and reports why). */
  served: readonly (Uint8Array | null)[];
  /** --watch: a reload of file `index` serves these bytes now (read from the file at change time `version`, ns). */
  reloaded(index: number, bytes: Uint8Array, version: bigint): void;
  /** Listening: the supervisor may print `Serving HTTP on …`. */
  ready(): void;
  /** The supervisor asks to stop (it got SIGINT/SIGTERM). */
  onStop(stop: () => void): void;
  /** The supervisor asks for this worker's metrics. */
  onMetrics(snapshot: () => MetricsSnapshot | null): void;
  /** The supervisor hands over a request a stopped worker never read (handover.ts): the response bytes (null: no answer), or null if not taken (no free instance). */
  onHandover(run: (request: Uint8Array) => Promise<Uint8Array | null> | null): void;
  /** The supervisor moved connections into the mailbox (`moved`): take them. */
  onAdopt(take: () => void): void;
}

/** Indexes into WorkerRole.global (an Int32Array every worker shares). */
export const GLOBAL = {
  /** admitted requests: the Gate's count, release counter and waiting workers (limits.ts SharedCount) */
  requests: 0,
  /** open connections: the same three words */
  connections: 3,
  /** the last instance id handed out */
  instanceId: 6,
  /** the last request id handed out */
  requestId: 7,
  length: 8,
} as const;

const log = (l: string): void => { process.stderr.write(`${l}\n`); };

export async function serveCli(opts: ServeCliOptions): Promise<number> {
  const role = opts.role ?? null;
  // H9 hook: TLS files are checked before anything is instantiated or bound.
  let extras: ServeExtras;
  try {
    extras = await ServeExtras.create(opts, log, role ? { workerId: () => role.index, nextRequestId: () => Atomics.add(role.global, GLOBAL.requestId, 1) + 1 } : null);
  } catch (e) {
    log(`weir: ${errText(e)}`);
    return 1;
  }
  let machine: ServeMachine;
  let served: ServeMachine | MachineSwitch; // H13: --watch swaps machines behind a MachineSwitch (watch.ts)
  // H13: one builder, so a --watch reload gets the same pool, limits and observer config.
  const buildMachine = (components: Component[]) => new ServeMachine(components.map((component, i) => ({ name: basename(opts.files[i]), component })), {
      wasi: opts.wasi,
      ...(opts.maxInstanceReuseCount !== undefined ? { maxInstanceReuseCount: opts.maxInstanceReuseCount } : {}),
      ...(opts.maxInstanceConcurrentReuseCount !== undefined ? { maxInstanceConcurrentReuseCount: opts.maxInstanceConcurrentReuseCount } : {}),
      ...(opts.idleInstanceTimeoutMs !== undefined ? { idleInstanceTimeoutMs: opts.idleInstanceTimeoutMs } : {}),
      log,
      ...(opts.instanceLimits ? { instanceLimits: opts.instanceLimits } : {}), // H8 hook
      ...extras.machineConfig(), // H9 hook
      ...(role ? { nextInstanceId: () => Atomics.add(role.global, GLOBAL.instanceId, 1) } : {}),
    });
  try {
    machine = buildMachine(opts.components);
    served = opts.watch ? new MachineSwitch(machine) : machine; // H13
    extras.attach(served as ServeMachine); // H13: the metrics read only `instances`, which a MachineSwitch has
    machine.warm();
  } catch (e) {
    log(`weir: ${e instanceof ServeSetupError ? e.message : `${basename(opts.files[0])}: cannot instantiate: ${errText(e)}`}`);
    if (opts.verbose && e instanceof Error && e.stack) log(e.stack);
    return 1;
  }
  // A bug in a request's bookkeeping must cost that request, not the server.
  process.on('unhandledRejection', (e) => { log(`weir: internal error (request abandoned): ${errText(e)}`); });
  // H9 hook: with --tls-cert/--tls-key one node:http2 secure server answers h2 and http/1.1.
  // H8 hook: admission, body size and -W timeout in front of the machine; node:http gets the header/idle limits.
  const limits = resolveLimits(opts.limits);
  // H13: with --watch `served` is a MachineSwitch: it has the handle() LimitedHandler calls.
  // In a worker with the CPU watchdog, the requests in flight are tracked where the supervisor can answer them (watchdog.ts).
  const table = role?.watchdog ? new ConnectionTable(role.watchdog) : null;
  const limited = new LimitedHandler(table ? table.inner(served) : served, limits, undefined,
    role ? { ctl: role.global, at: GLOBAL.requests, held: { ctl: role.held, at: 0 } } : null); // (H9's machine hook counts -W timeout expiries for the metrics)
  const serving = extras.listener(nodeListener(limited, log, table ?? undefined));
  let started = 0; // requests so far, for the idle collector (idle-gc.ts)
  const listener: typeof serving = (req, res) => { started++; return serving(req, res); };
  // --idle-timeout on plain HTTP: one sweep instead of node's timer per response (idle.ts).
  const idle = !extras.tls && limits.idleTimeoutMs > 0 ? new IdleSweep(limits.idleTimeoutMs) : null;
  const server: Server = extras.tls ? await createHttpsServer(extras.tls, listener) as unknown as Server
    : idle ? createServer(IdleSweep.serverOptions(httpServerOptions(limits)), idle.hinting(listener)) : createServer(httpServerOptions(limits), listener);
  // H8 hook: the listening socket is a net server that hands connections to `server` under --max-connections.
  const front = createNetServer({ pauseOnConnect: true });
  if (extras.tls) applyTlsServerLimits(server, limits); // H8: header size and timeouts on the HTTPS server too
  const connections = new ConnectionGate(front, server, limits, extras.tls !== null, role ? { ctl: role.global, at: GLOBAL.connections, held: { ctl: role.held, at: 1 } } : null);
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    if (s instanceof HandoverSocket) return; // ends with its one response
    s.setNoDelay(true);
    if (table && !extras.tls) table.connection(s);
    idle?.add(s);
  });
  // Plain HTTP/1.x only (the supervisor hands over what it read off such a connection); a warm spare runs
  // them too, so it is set before the spare waits to be activated. Taken only into instances free now:
  // a burst of handed-over requests that instantiated more (reuse 1: one each) answered late and grew the
  // pool, and the RSS level with it (soak, 200,000 requests: +15-20 MiB).
  let stopped = false;
  /** The machine new requests go to (with --watch, the one the switch holds now). */
  const currentMachine = (): ServeMachine => (served instanceof MachineSwitch ? served.machine : served);
  if (role && !extras.tls) {
    let taken = 0; // handed-over requests not yet answered (counted against the free capacity until then)
    role.onHandover((request) => {
      if (stopped || taken >= currentMachine().freeCapacity) return null;
      taken++;
      const socket = new HandoverSocket(request);
      server.emit('connection', socket);
      return socket.response.finally(() => { taken--; });
    });
  }
  // Connections a stopped worker had between requests, moved whole (handover.ts): served from here on like
  // ones this worker accepted (through the connection gate), once it listens; not while it drains (the
  // supervisor closes what is left).
  const mailbox = role?.moved && !extras.tls ? new MovedConnections(role.moved) : null;
  const adoptMoved = (): void => {
    if (!mailbox || !front.listening || stopped) return;
    for (const fd of mailbox.take()) {
      let socket: Socket;
      try {
        socket = new Socket({ fd, readable: true, writable: true, pauseOnCreate: true } as ConstructorParameters<typeof Socket>[0]);
      } catch {
        libc()?.close(fd);
        continue;
      }
      front.emit('connection', socket);
    }
  };
  role?.onAdopt(adoptMoved);
  // Gives back the heap a burst grew once this thread has been quiet (idle-gc.ts); a warm spare too.
  const collector = new IdleCollector({ pending: () => served.pending, started: () => started, instances: () => served.instances });
  try {
    await extras.listenMetrics(); // H9 hook
  } catch (e) {
    log(`weir: cannot listen on --metrics-addr ${opts.metricsAddr!.host}:${opts.metricsAddr!.port}: ${(e as NodeJS.ErrnoException).code ?? errText(e)}`);
    await machine.close();
    return 1;
  }
  try {
    if (role?.standby) {
      await role.standby; // a warm spare: ready in every way but listening
      // Its warm instance retires after --idle-instance-timeout like any other: a spare that waited longer
      // makes one again as it takes over (before the requests handed over from the stopped worker, which
      // take only free instances, are delivered: they come in a later message).
      const current = currentMachine();
      if (current.instances === 0) {
        try { current.warm(); } catch { /* instantiating failed now: the first request reports it */ }
      }
    }
    await new Promise<void>((resolve, reject) => {
      front.once('error', reject); // H8: front, not server
      const done = () => { front.off('error', reject); resolve(); };
      if (role?.listener) {
        // a descriptor of this worker's own for the one socket every worker accepts from (closed with `front`)
        const fd = takeSharedListener(role.listener);
        const shared = role.listener;
        if (fd === -1) reject(Object.assign(new Error('the server is stopping'), { code: 'ESHUTDOWN' }));
        else if (fd < 0) reject(new Error('this worker cannot dup the shared listening socket (node:ffi)'));
        else front.listen({ fd }, () => { noteListening(shared, role.held, fd); done(); });
      } else if (role) front.listen({ port: role.port, host: opts.host, reusePort: true }, done);
      else front.listen(opts.port, opts.host, done);
    });
  } catch (e) {
    log(`weir: cannot listen on ${opts.host}:${opts.port}: ${(e as NodeJS.ErrnoException).code ?? errText(e)}`);
    extras.close();
    await machine.close();
    return 1;
  }
  const addr = front.address(); // H8
  const port = addr && typeof addr === 'object' ? addr.port : opts.port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  if (role) {
    role.onMetrics(() => extras.metricsSnapshot());
    table?.start(); // the watchdog's heartbeat: from now on the supervisor watches this worker
    role.ready(); // the supervisor prints the Serving line once every worker listens
    adoptMoved(); // moved before this worker listened (it may be the spare taking over from the one stopped)
  }
  // H13: --watch: reload on change; a failed reload keeps the current version serving.
  const watcher = opts.watch && opts.compile && served instanceof MachineSwitch
    ? new ServeWatcher({ files: opts.files, components: opts.components, ...(opts.sources ? { sources: opts.sources } : {}), compile: opts.compile, target: served, log: (l: string) => { if (!role || role.index === 1) log(l); }, verbose: opts.verbose, // every worker reloads; the first one says so
      ...(role ? { onReload: (i: number, bytes: Uint8Array, version: bigint) => role.reloaded(i, bytes, version) } : {}),
      build: (components) => { const m = buildMachine(components); try { m.warm(); } catch (e) { void m.close(); throw e; } return m; } })
    : null;

  const exited = new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) { log(`weir: ${signal} again: exiting now`); resolve(130); return; }
      stopping = true;
      stopped = true;
      watcher?.close(); // H13
      collector.close();
      if (opts.verbose) log(`weir: ${signal}: finishing ${served.pending} request(s) in flight`);
      if (role?.listener) noteListening(role.listener, role.held, -1); // the number is closed next: the supervisor must not touch it
      connections.close(); // H8: stop accepting; connections still queued are closed
      limited.gate.close(); // H8: requests still queued get 503
      // H8: --shutdown-timeout bounds the drain (requests the guest never finishes).
      if (limits.shutdownTimeoutMs > 0) {
        setTimeout(() => {
          log(`weir: --shutdown-timeout (${limits.shutdownTimeoutMs} ms) expired with ${served.pending} request(s) in flight: exiting`);
          for (const s of sockets) s.destroy();
          resolve(1);
        }, limits.shutdownTimeoutMs).unref();
      }
      server.close();
      server.closeIdleConnections?.(); // H9: not on the TLS (http2) server
      void served.close().then(() => {
        table?.close();
        idle?.close();
        extras.close(); // H9: after the last request's access-log line
        for (const s of sockets) s.destroy();
        resolve(0);
      });
    };
    if (role) {
      role.onStop(() => stop('SIGTERM'));
    } else {
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    }
  });
  if (!role) {
    // Printed once SIGINT/SIGTERM drain: a signal sent as soon as this line is read must not kill the process.
    // H9 hook: TLS mode says HTTPS; the metrics URL (if any) is the second line.
    process.stderr.write(extras.tls ? `Serving HTTPS on https://${host}:${port}/\n` : `Serving HTTP on http://${host}:${port}/\n`);
    const metricsUrl = extras.metricsUrl();
    if (metricsUrl) process.stderr.write(`Metrics on ${metricsUrl}\n`);
  }
  return exited;
}
