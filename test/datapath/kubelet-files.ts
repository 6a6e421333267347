// The per-pod files kubelet writes, as kubelet v1.36 writes them (pkg/kubelet/kubelet_pods.go
// managedHostsFileContent, pkg/kubelet/network/dns/dns.go GetPodDNS), for the data-path pod runner.
// Pure functions: the unit suite checks them against kubelet's format.

export interface HostAlias {
  ip: string;
  hostnames?: string[];
}

export interface PodForFiles {
  metadata: { name: string; namespace: string };
  spec: {
    hostname?: string;
    subdomain?: string;
    hostNetwork?: boolean;
    hostAliases?: HostAlias[];
    dnsPolicy?: string;
    dnsConfig?: { nameservers?: string[]; searches?: string[]; options?: Array<{ name: string; value?: string }> };
  };
  status?: { podIP?: string; podIPs?: Array<{ ip: string }> };
}

export interface KubeletDNS {
  clusterDNS: string[];
  clusterDomain: string;
}

export const DEFAULT_KUBELET_DNS: KubeletDNS = { clusterDNS: ['10.96.0.10'], clusterDomain: 'cluster.local' };

/** /etc/hosts of a pod (managedHostsFileContent + hostsEntriesFromHostAliases). */
export function hostsFile(pod: PodForFiles, dns: KubeletDNS = DEFAULT_KUBELET_DNS): string {
  const ips = pod.status?.podIPs?.map((p) => p.ip) ?? (pod.status?.podIP ? [pod.status.podIP] : []);
  // truncatePodHostnameIfNeeded: at most 63 characters, then no trailing '-' or '.'
  const raw = pod.spec.hostname || pod.metadata.name;
  const hostname = raw.length > 63 ? raw.slice(0, 63).replace(/[-.]+$/, '') : raw;
  const domain = pod.spec.subdomain ? `${pod.spec.subdomain}.${pod.metadata.namespace}.svc.${dns.clusterDomain}` : '';
  let out =
    '# Kubernetes-managed hosts file.\n' +
    '127.0.0.1\tlocalhost\n' +
    '::1\tlocalhost ip6-localhost ip6-loopback\n' +
    'fe00::0\tip6-localnet\n' +
    'fe00::0\tip6-mcastprefix\n' +
    'fe00::1\tip6-allnodes\n' +
    'fe00::2\tip6-allrouters\n';
  for (const ip of ips) out += domain ? `${ip}\t${hostname}.${domain}\t${hostname}\n` : `${ip}\t${hostname}\n`;
  const aliases = pod.spec.hostAliases ?? [];
  if (aliases.length > 0) {
    out += '\n# Entries added by HostAliases.\n';
    for (const a of aliases) out += `${a.ip}\t${(a.hostnames ?? []).join('\t')}\n`;
  }
  return out;
}

const uniq = (xs: string[]) => [...new Set(xs)];

/**
 * /etc/resolv.conf of a pod. The stand-in kubelet has no host resolver file (--resolv-conf=""), so
 * "Default" gives kubelet's fallback (nameserver 127.0.0.1, search .).
 */
export function resolvConf(pod: PodForFiles, dns: KubeletDNS = DEFAULT_KUBELET_DNS): string {
  let policy = pod.spec.dnsPolicy || 'ClusterFirst';
  if (policy === 'ClusterFirst' && pod.spec.hostNetwork) policy = 'Default';
  if (policy === 'ClusterFirstWithHostNet') policy = 'ClusterFirst';
  let servers: string[] = [];
  let searches: string[] = [];
  let options: string[] = [];
  if (policy === 'ClusterFirst') {
    const ns = pod.metadata.namespace;
    servers = [...dns.clusterDNS];
    searches = [`${ns}.svc.${dns.clusterDomain}`, `svc.${dns.clusterDomain}`, dns.clusterDomain];
    options = ['ndots:5'];
  } else if (policy === 'Default') {
    servers = ['127.0.0.1'];
    searches = ['.'];
  }
  const dc = pod.spec.dnsConfig;
  if (dc) {
    servers = uniq([...servers, ...(dc.nameservers ?? [])]);
    searches = uniq([...searches, ...(dc.searches ?? [])]);
    // mergeDNSOptions: by name, later wins (kubelet's map order is random; keep first-seen order)
    const m = new Map<string, string>();
    for (const o of options) {
      const i = o.indexOf(':');
      m.set(i === -1 ? o : o.slice(0, i), i === -1 ? '' : o.slice(i + 1));
    }
    for (const o of dc.options ?? []) m.set(o.name, o.value ?? '');
    options = [...m].map(([k, v]) => (v ? `${k}:${v}` : k));
  }
  // formDNSConfigFitsLimits: at most 3 nameservers, 32 search paths
  servers = servers.slice(0, 3);
  searches = searches.slice(0, 32);
  let out = '';
  if (servers.length) out += servers.map((s) => `nameserver ${s}\n`).join('');
  if (searches.length) out += `search ${searches.join(' ')}\n`;
  if (options.length) out += `options ${options.join(' ')}\n`;
  return out;
}
