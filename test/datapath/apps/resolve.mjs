// Resolves a name from inside a pod's network namespace. argv[2] is JSON:
//   {"name": "..."}                 as an app does: getaddrinfo (dns.lookup), i.e. the pod's
//                                   /etc/hosts, then /etc/resolv.conf with its search path and ndots
//   {"name": "...", "server": "ip", "type": "A"|"AAAA"}   one query to that server (dns.Resolver)
// Prints one JSON line: {"ok": true, "addresses": [...]} or {"ok": false, "code": "ENOTFOUND", ...}.
import dns from 'node:dns/promises';

const req = JSON.parse(process.argv[2]);
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
try {
  if (req.server) {
    const r = new dns.Resolver({ timeout: 2000, tries: 2 });
    r.setServers([req.server]);
    const addresses = req.type === 'AAAA' ? await r.resolve6(req.name) : await r.resolve4(req.name);
    out({ ok: true, addresses });
  } else {
    const addresses = (await dns.lookup(req.name, { all: true, family: 4 })).map((a) => a.address);
    out({ ok: true, addresses });
  }
} catch (e) {
  out({ ok: false, code: e.code, error: e.message });
}
