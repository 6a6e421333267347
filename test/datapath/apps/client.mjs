// The data-path suite's client, exec'd inside a pod's network namespace (the suite's `kubectl exec`):
//   node client.mjs '<json>'   prints one JSON result line, exit 0 even when the call failed.
// json: {"url": "http://name:port/path", "headers": {...}, "timeoutMs": 10000}
//    or {"tls": {"host","port","servername","ca"(PEM file),"cert","key","path","headers"}}: HTTP over
//       the client's own TLS (for tls:// passthrough and for probing mTLS ports)
//    or {"tcp": {"host","port","data"}}: raw bytes, prints what came back
//    or {"resolve": "name"}: the pod's resolver (getaddrinfo, IPv4), prints {"addresses": [...]}.
//    or {"url", "headers", "repeat": N}: N sequential requests, prints {"tally": {"<status> <x-echo-pod>": count}}
//       (one process for a whole sample: traffic-split measurements).
// Names resolve as the pod resolves them (its /etc/hosts and resolv.conf, bind-mounted by ip netns).
import dns from 'node:dns';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';

const req = JSON.parse(process.argv[2] ?? '{}');
const timeoutMs = req.timeoutMs ?? 10_000;
const done = (o) => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
  process.exit(0);
};
setTimeout(() => done({ ok: false, error: 'timeout' }), timeoutMs).unref();

function readBody(res, extra) {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (c) => (body += c));
  res.on('end', () => {
    let json;
    try {
      json = JSON.parse(body);
    } catch {
      json = undefined;
    }
    done({ ok: true, status: res.statusCode, headers: res.headers, body, json, ...extra });
  });
}

function once(url, headers) {
  return new Promise((resolve) => {
    const r = http.request(url, { headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(`${res.statusCode} ${res.headers['x-echo-pod'] ?? '-'}`));
    });
    r.on('error', (e) => resolve(`error ${e.code ?? e.message}`));
    r.end();
  });
}

if (req.url && req.repeat) {
  const tally = {};
  for (let i = 0; i < req.repeat; i++) {
    const k = await once(req.url, req.headers ?? {});
    tally[k] = (tally[k] ?? 0) + 1;
  }
  done({ ok: true, tally });
} else if (req.url) {
  const r = http.request(req.url, { method: req.method ?? 'GET', headers: req.headers ?? {}, agent: false }, (res) => readBody(res, {}));
  r.on('error', (e) => done({ ok: false, error: e.code ?? e.message }));
  r.end(req.body ?? undefined);
} else if (req.tls) {
  const t = req.tls;
  const s = tls.connect({
    host: t.host,
    port: t.port,
    servername: t.servername,
    ...(t.ca ? { ca: readFileSync(t.ca) } : {}),
    ...(t.cert ? { cert: readFileSync(t.cert), key: readFileSync(t.key) } : {}),
    rejectUnauthorized: t.ca !== undefined,
    ALPNProtocols: ['http/1.1'],
  });
  s.on('error', (e) => done({ ok: false, error: e.code ?? e.message }));
  s.on('secureConnect', () => {
    const peer = s.getPeerCertificate();
    const r = http.request({ createConnection: () => s, path: t.path ?? '/', headers: { host: t.servername ?? t.host, ...(t.headers ?? {}) } }, (res) =>
      readBody(res, { authorized: s.authorized, peerSubject: peer?.subject ?? null, peerSAN: peer?.subjectaltname ?? null }),
    );
    r.on('error', (e) => done({ ok: false, error: e.code ?? e.message, handshake: true }));
    r.end();
  });
} else if (req.tcp) {
  const s = net.connect(req.tcp.port, req.tcp.host);
  let got = '';
  s.on('connect', () => s.write(req.tcp.data));
  s.on('data', (d) => {
    got += d.toString('utf8');
    if (got.includes(req.tcp.data)) done({ ok: true, body: got });
  });
  s.on('error', (e) => done({ ok: false, error: e.code ?? e.message, body: got }));
  s.on('close', () => done({ ok: got.length > 0, body: got, closed: true }));
} else if (req.resolve) {
  dns.lookup(req.resolve, { family: 4, all: true }, (err, addrs) =>
    err ? done({ ok: false, error: err.code ?? err.message }) : done({ ok: true, addresses: addrs.map((a) => a.address) }),
  );
} else {
  done({ ok: false, error: 'nothing to do' });
}
