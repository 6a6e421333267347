// The data-path pod runner writes each pod's /etc/hosts and resolv.conf as kubelet v1.36 does
// (test/datapath/kubelet-files.ts); these are kubelet's formats, byte for byte.
import { describe, expect, it } from 'vitest';
import { hostsFile, resolvConf, type PodForFiles } from '../datapath/kubelet-files.js';

const pod = (spec: PodForFiles['spec'], name = 'legacy-5f7c9-abcde'): PodForFiles => ({
  metadata: { name, namespace: 'shop' },
  spec,
  status: { podIP: '10.244.64.7', podIPs: [{ ip: '10.244.64.7' }] },
});

const HEADER =
  '# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n';

describe('hosts file (kubelet managedHostsFileContent)', () => {
  it('writes the pod entry and one line per hostAlias, names tab-separated', () => {
    const f = hostsFile(
      pod({
        hostAliases: [
          { ip: '10.96.12.34', hostnames: ['orders.sales', 'orders.sales.svc', 'orders.sales.svc.cluster.local'] },
          { ip: '1.2.3.4', hostnames: ['mine'] },
        ],
      }),
    );
    expect(f).toBe(
      `${HEADER}10.244.64.7\tlegacy-5f7c9-abcde\n\n# Entries added by HostAliases.\n10.96.12.34\torders.sales\torders.sales.svc\torders.sales.svc.cluster.local\n1.2.3.4\tmine\n`,
    );
  });

  it('uses hostname.subdomain.<ns>.svc.<domain> with a subdomain, and no alias block without aliases', () => {
    expect(hostsFile(pod({ hostname: 'h', subdomain: 'sub' }))).toBe(
      `${HEADER}10.244.64.7\th.sub.shop.svc.cluster.local\th\n`,
    );
  });

  it('truncates a pod name longer than 63 characters and drops a trailing dash', () => {
    const name = `${'a'.repeat(62)}-bcd`;
    expect(hostsFile(pod({}, name))).toContain(`10.244.64.7\t${'a'.repeat(62)}\n`);
  });
});

describe('resolv.conf (kubelet GetPodDNS)', () => {
  it('ClusterFirst: cluster DNS, the namespace search path, ndots:5', () => {
    expect(resolvConf(pod({}))).toBe(
      'nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n',
    );
  });

  it('None + dnsConfig: only what the pod says (what wpgw injects in dnsConfig mode)', () => {
    const f = resolvConf(
      pod({
        dnsPolicy: 'None',
        dnsConfig: {
          nameservers: ['10.96.55.5'],
          searches: ['shop.svc.cluster.local'],
          options: [{ name: 'ndots', value: '2' }, { name: 'edns0' }],
        },
      }),
    );
    expect(f).toBe('nameserver 10.96.55.5\nsearch shop.svc.cluster.local\noptions ndots:2 edns0\n');
  });

  it('ClusterFirst + dnsConfig: appended without duplicates, options merged by name', () => {
    const f = resolvConf(
      pod({
        dnsConfig: {
          nameservers: ['10.96.0.10', '10.0.0.53'],
          searches: ['cluster.local', 'corp.example'],
          options: [{ name: 'ndots', value: '1' }],
        },
      }),
    );
    expect(f).toBe(
      'nameserver 10.96.0.10\nnameserver 10.0.0.53\nsearch shop.svc.cluster.local svc.cluster.local cluster.local corp.example\noptions ndots:1\n',
    );
  });

  it('hostNetwork with ClusterFirst falls back to Default (kubelet without a host resolv.conf)', () => {
    expect(resolvConf(pod({ hostNetwork: true }))).toBe('nameserver 127.0.0.1\nsearch .\n');
  });
});
