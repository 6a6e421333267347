// An open-loop load generator at a fixed rate, evenly spaced: request i is due at t0 + i/rate, is
// queued when the generator's 1 ms timer finds it due, and its latency counts from that moment,
// including any wait for a free connection. A server that falls behind is charged for the requests
// waiting to be sent (no coordinated omission); the generator's own timer lateness is not (it is
// reported separately as the schedule lag). autocannon's overallRate, by contrast, sends each
// second's quota back to back on every connection and then idles.
//
// Minimal HTTP/1.1 over kept-alive TLS connections: the request bytes are built once, responses
// are framed by Content-Length (both servers send it). One request in flight per connection; due
// requests wait in a FIFO for a free connection.
import { connect, type TLSSocket } from 'node:tls';

export interface PacedResult {
  /** Latencies (ms) of 2xx answers, from when each request was queued. */
  latencies: number[];
  /** How late (ms) each request was queued after its due time: the generator's own imprecision. */
  scheduleLag: number[];
  ok: number;
  non2xx: number;
  errors: number;
  seconds: number;
}

interface Conn {
  socket: TLSSocket;
  buf: Buffer;
  due: number;
  busy: boolean;
  dead: boolean;
}

export async function pacedLoad(o: {
  port: number;
  ca: string;
  body: string;
  rate: number;
  seconds: number;
  connections: number;
}): Promise<PacedResult> {
  const payload = Buffer.from(o.body);
  const request = Buffer.concat([
    Buffer.from(
      `POST /mutate HTTP/1.1\r\nhost: 127.0.0.1:${o.port}\r\ncontent-type: application/json\r\ncontent-length: ${payload.length}\r\n\r\n`,
    ),
    payload,
  ]);
  const total = Math.round(o.rate * o.seconds);
  const interval = 1000 / o.rate;
  const out: PacedResult = { latencies: [], scheduleLag: [], ok: 0, non2xx: 0, errors: 0, seconds: 0 };
  const queue: number[] = [];
  const conns: Conn[] = [];
  let finished = 0;
  let measuring = false;
  let resolveDone: () => void = () => {};
  let resolveWarm: () => void = () => {};
  let warm = 0;

  const dispatch = (): void => {
    for (const c of conns) {
      if (queue.length === 0) return;
      if (c.busy || c.dead) continue;
      c.busy = true;
      c.due = queue.shift()!;
      c.socket.write(request);
    }
  };

  const complete = (c: Conn, status: number): void => {
    c.busy = false;
    if (!measuring) {
      if (++warm === o.connections) resolveWarm();
      return;
    }
    if (status >= 200 && status < 300) {
      out.ok++;
      out.latencies.push(performance.now() - c.due);
    } else out.non2xx++;
    if (++finished === total) resolveDone();
    dispatch();
  };

  const onData = (c: Conn, chunk: Buffer): void => {
    c.buf = c.buf.length ? Buffer.concat([c.buf, chunk]) : chunk;
    for (;;) {
      const head = c.buf.indexOf('\r\n\r\n');
      if (head < 0) return;
      const text = c.buf.subarray(0, head).toString('latin1');
      const status = Number(text.slice(9, 12));
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(text);
      const len = m ? Number(m[1]) : 0;
      if (c.buf.length < head + 4 + len) return;
      c.buf = c.buf.subarray(head + 4 + len);
      complete(c, status);
    }
  };

  await Promise.all(
    Array.from(
      { length: o.connections },
      () =>
        new Promise<void>((resolve, reject) => {
          const socket = connect({ host: '127.0.0.1', port: o.port, ca: o.ca, servername: 'localhost' }, () =>
            resolve(),
          );
          const c: Conn = { socket, buf: Buffer.alloc(0), due: 0, busy: false, dead: false };
          socket.on('data', (chunk: Buffer) => onData(c, chunk));
          socket.on('error', reject);
          socket.on('close', () => {
            c.dead = true;
            if (c.busy && measuring) {
              c.busy = false;
              out.errors++;
              if (++finished === total) resolveDone();
            }
          });
          conns.push(c);
        }),
    ),
  );
  // One request per connection first, so every connection is past its handshake and warm.
  const warmed = new Promise<void>((r) => (resolveWarm = r));
  for (let i = 0; i < o.connections; i++) queue.push(performance.now());
  dispatch();
  await warmed;

  measuring = true;
  const done = new Promise<void>((r) => (resolveDone = r));
  const t0 = performance.now() + 2;
  let sent = 0;
  const tick = (): void => {
    const now = performance.now();
    let added = false;
    while (sent < total && t0 + sent * interval <= now) {
      out.scheduleLag.push(now - (t0 + sent++ * interval));
      queue.push(now);
      added = true;
    }
    if (added) dispatch();
    // Sleep until the next request is due (timers have 1 ms granularity: a request may go out up
    // to ~1 ms late, and that lateness is charged to the server). Never spin: a busy loop here
    // would starve the kernel's network work on this core.
    if (sent < total) setTimeout(tick, Math.max(0, t0 + sent * interval - performance.now()));
  };
  tick();
  // A server that stops answering must not hang the benchmark.
  const guard = setTimeout(() => resolveDone(), (o.seconds + 30) * 1000);
  await done;
  clearTimeout(guard);
  out.errors += total - finished;
  out.seconds = (performance.now() - t0) / 1000;
  measuring = false;
  for (const c of conns) c.socket.destroy();
  return out;
}
