// The harness's stand-in for DNS outside the cluster (public DNS for the suite's external hosts),
// run in the node network namespace on the cluster DNS address: answers A queries for the names in
// DNS_RECORDS (JSON {"name": "ip"}; "*.zone" answers every name under zone), NOERROR with no answer for other types of those names, and
// NXDOMAIN for everything else, so search-path expansion (ndots:5) falls through quickly.
// UDP only (what Envoy's c-ares and glibc ask first). DNS_BIND=ip:port.
import dgram from 'node:dgram';

const records = JSON.parse(process.env.DNS_RECORDS ?? '{}');
const [host, port] = (process.env.DNS_BIND ?? '0.0.0.0:53').split(':');
const sock = dgram.createSocket('udp4');

function parseName(buf, off) {
  const labels = [];
  while (buf[off] !== 0) {
    const len = buf[off];
    labels.push(buf.subarray(off + 1, off + 1 + len).toString('ascii'));
    off += len + 1;
  }
  return { name: labels.join('.').toLowerCase(), end: off + 1 };
}

sock.on('message', (msg, rinfo) => {
  if (msg.length < 12) return;
  const { name, end } = parseName(msg, 12);
  const qtype = msg.readUInt16BE(end);
  const question = msg.subarray(12, end + 4);
  const wild = Object.keys(records).find((k) => k.startsWith('*.') && name.endsWith(k.slice(1)));
  const ip = Object.hasOwn(records, name) ? records[name] : wild ? records[wild] : undefined;
  const answer = ip !== undefined && qtype === 1;
  const header = Buffer.alloc(12);
  msg.copy(header, 0, 0, 2); // id
  const rd = msg[2] & 0x01;
  header[2] = 0x84 | rd; // QR, AA, RD copied
  header[3] = ip === undefined ? 0x03 : 0x00; // NXDOMAIN or NOERROR
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answer ? 1 : 0, 6);
  const parts = [header, question];
  if (answer) {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question name
    rr.writeUInt16BE(1, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(5, 6); // TTL 5 s
    rr.writeUInt16BE(4, 10);
    ip.split('.').forEach((o, i) => (rr[12 + i] = Number(o)));
    parts.push(rr);
  }
  process.stdout.write(`${JSON.stringify({ t: Date.now(), event: 'query', name, qtype, from: rinfo.address, answer: answer ? ip : null })}\n`);
  sock.send(Buffer.concat(parts), rinfo.port, rinfo.address);
});
sock.bind(Number(port), host, () => process.stdout.write(`${JSON.stringify({ event: 'listening', host, port })}\n`));
process.on('SIGTERM', () => process.exit(0));
