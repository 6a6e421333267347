// Test app for the data-path suite (the pod runner starts it for images "wpgw.test/echo*"), run
// inside the pod's network namespace. Every listener answers with what it received, so the tests
// judge the bytes that actually arrived:
//   ECHO_HTTP=[bind:]port[,...]  HTTP: {"pod","method","url","headers","remote","local"} as JSON, with
//                                the status a request header x-echo-status asks for (default 200)
//   ECHO_TLS=port[,...]          TLS (ECHO_TLS_CERT_PEM/ECHO_TLS_KEY_PEM, or files ECHO_TLS_CERT/KEY) then HTTP: the same
//                                plus "sni" (the ClientHello's server name) and "alpn"
//   ECHO_TCP=port                raw TCP: "tcp-echo <pod> <bytes received>" per chunk
// Each event (request, TLS error) is also one JSON line on stdout: the pod's log. ECHO_LOG=quiet
// leaves requests out of it (the data-path benchmark: thousands a second).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';

const pod = process.env.POD_NAME ?? 'unknown';
const log = (o) => process.stdout.write(`${JSON.stringify({ t: Date.now(), pod, ...o })}\n`);
const logRequests = process.env.ECHO_LOG !== 'quiet';
const listenArgs = (spec) => {
  const i = spec.lastIndexOf(':');
  return i === -1 ? [Number(spec), '0.0.0.0'] : [Number(spec.slice(i + 1)), spec.slice(0, i)];
};

function handler(extra) {
  return (req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const out = {
        pod,
        method: req.method,
        url: req.url,
        headers: req.headers,
        body,
        remote: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
        local: `${req.socket.localAddress}:${req.socket.localPort}`,
        ...extra(req),
      };
      if (logRequests) log({ event: 'request', ...out });
      const status = Number(req.headers['x-echo-status'] ?? 200);
      res.writeHead(status >= 200 && status <= 599 ? status : 200, { 'content-type': 'application/json', 'x-echo-pod': pod });
      res.end(JSON.stringify(out));
    });
  };
}

for (const spec of (process.env.ECHO_HTTP ?? '').split(',').filter(Boolean)) {
  const [port, host] = listenArgs(spec);
  http.createServer(handler(() => ({}))).listen(port, host, () => log({ event: 'listening', proto: 'http', host, port }));
}

for (const spec of (process.env.ECHO_TLS ?? '').split(',').filter(Boolean)) {
  const [port, host] = listenArgs(spec);
  const server = tls.createServer({
    cert: process.env.ECHO_TLS_CERT_PEM ?? readFileSync(process.env.ECHO_TLS_CERT),
    key: process.env.ECHO_TLS_KEY_PEM ?? readFileSync(process.env.ECHO_TLS_KEY),
    ALPNProtocols: ['http/1.1'],
    // logs every ClientHello's server name, also for handshakes that fail later
    SNICallback: (name, cb) => {
      log({ event: 'client-hello', port, sni: name });
      cb(null, undefined);
    },
  });
  const h = http.createServer(handler((req) => ({ sni: req.socket.servername ?? null, alpn: req.socket.alpnProtocol || null, tls: true })));
  server.on('secureConnection', (s) => {
    log({ event: 'tls', port, sni: s.servername ?? null, remote: s.remoteAddress });
    h.emit('connection', s);
  });
  server.on('tlsClientError', (e, s) => log({ event: 'tls-error', port, error: e.message, remote: s?.remoteAddress }));
  server.listen(port, host, () => log({ event: 'listening', proto: 'tls', host, port }));
}

if (process.env.ECHO_TCP) {
  const [port, host] = listenArgs(process.env.ECHO_TCP);
  net
    .createServer((s) => {
      s.on('data', (d) => {
        log({ event: 'tcp', remote: s.remoteAddress, bytes: d.toString('utf8') });
        s.write(`tcp-echo ${pod} ${d.toString('utf8')}`);
      });
      s.on('error', () => {});
    })
    .listen(port, host, () => log({ event: 'listening', proto: 'tcp', host, port }));
}

process.on('SIGTERM', () => process.exit(0));
