// injector-config.mjs: istiod's sidecar injector configuration, rendered from the Helm chart the
// istio.io/istio module ships (manifests/charts/istio-control/istio-discovery), the way
// templates/istiod-injector-configmap.yaml renders ConfigMap istio-sidecar-injector, for a
// default install (no profile, revision "") with these values set:
//   global.hub = $ISTIO_PROXY_HUB (default docker.io/istio), global.tag = $ISTIO_PROXY_TAG (1.30.3).
//
//   node injector-config.mjs render <chart-dir> <out-dir>   writes <out-dir>/config and values
//   node injector-config.mjs probe <inject-url> <ca-file>   POSTs a small pod's AdmissionReview,
//                                                           exits 0 iff allowed with a JSON patch
//
// Used by start.sh (ISTIO_INJECTOR=1). Plain ESM for any Node >= 18; `yaml` from the repo.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';

const [mode, a, b] = process.argv.slice(2);

function isObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
/** Helm's mustMergeOverwrite for two maps: `over` wins, maps merge recursively. */
function merge(base, over) {
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isObject(v) && isObject(out[k]) ? merge(out[k], v) : v;
  return out;
}
function pick(obj, ...keys) {
  return Object.fromEntries(keys.filter((k) => k in (obj ?? {})).map((k) => [k, obj[k]]));
}

if (mode === 'render' && a && b) {
  const chart = a;
  const file = (f) => readFileSync(join(chart, f), 'utf8');
  // zzz_profile.yaml: .Values = defaults (under _internal_defaults_do_not_set) <- user values.
  const defaults = parse(file('values.yaml'))._internal_defaults_do_not_set;
  const user = { global: { hub: process.env.ISTIO_PROXY_HUB || 'docker.io/istio', tag: process.env.ISTIO_PROXY_TAG || '1.30.3' } };
  const v = merge(defaults, user);

  // data.values: pick .Values "global" "sidecarInjectorWebhook" "revision", plus pilot {cni, env}
  // and gateways {securityContext, seccompProfile}; toPrettyJson.
  const values = { ...pick(v, 'global', 'sidecarInjectorWebhook', 'revision'), pilot: pick(v, 'cni', 'env'), gateways: pick(v.gateways, 'securityContext', 'seccompProfile') };

  // data.config
  const sw = v.sidecarInjectorWebhook;
  const templates = {};
  for (const [name, f] of [
    ['sidecar', 'injection-template.yaml'],
    ['gateway', 'gateway-injection-template.yaml'],
    ['grpc-simple', 'grpc-simple.yaml'],
    ['grpc-agent', 'grpc-agent.yaml'],
    ['waypoint', 'waypoint.yaml'],
    ['kube-gateway', 'kube-gateway.yaml'],
    ['agentgateway', 'agentgateway.yaml'],
  ]) {
    if (!(name in (sw.templates ?? {}))) templates[name] = `${file(join('files', f)).trim()}\n`;
  }
  Object.assign(templates, sw.templates ?? {});
  const config = {
    defaultTemplates: sw.defaultTemplates?.length ? sw.defaultTemplates : ['sidecar'],
    policy: v.global.proxy.autoInject,
    alwaysInjectSelector: sw.alwaysInjectSelector,
    neverInjectSelector: sw.neverInjectSelector,
    injectedAnnotations: sw.injectedAnnotations,
    template: '{{ Template_Version_And_Istio_Version_Mismatched_Check_Installation }}',
    templates,
  };
  mkdirSync(b, { recursive: true });
  writeFileSync(join(b, 'values'), JSON.stringify(values, null, 2));
  writeFileSync(join(b, 'config'), stringify(config, { lineWidth: 0, blockQuote: 'literal' }));
  process.stdout.write(`policy ${config.policy}, templates ${Object.keys(templates).join(' ')}, proxy image ${v.global.hub}/${v.global.proxy.image}:${v.global.tag}\n`);
} else if (mode === 'probe' && a && b) {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'probe-', namespace: 'default', labels: { app: 'probe' } },
    spec: { containers: [{ name: 'app', image: 'registry.example.com/probe:1', ports: [{ containerPort: 8080 }] }] },
  };
  const review = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '00000000-0000-4000-8000-00000000cafe',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'default',
      operation: 'CREATE',
      userInfo: { username: 'probe' },
      object: pod,
    },
  };
  const req = request(a, { method: 'POST', ca: readFileSync(b), headers: { 'content-type': 'application/json' }, timeout: 5000 }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c) => (body += c));
    res.on('end', () => {
      let r;
      try {
        r = JSON.parse(body).response;
      } catch {
        r = undefined;
      }
      if (res.statusCode === 200 && r?.allowed === true && r.patch) {
        const ops = JSON.parse(Buffer.from(r.patch, 'base64').toString('utf8'));
        process.stdout.write(`injected: ${ops.length} patch operations\n`);
        process.exit(0);
      }
      process.stdout.write(`not injected: HTTP ${res.statusCode} ${body.slice(0, 300)}\n`);
      process.exit(1);
    });
  });
  req.on('error', (e) => {
    process.stdout.write(`probe failed: ${e.message}\n`);
    process.exit(1);
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.end(JSON.stringify(review));
} else {
  process.stderr.write('usage: injector-config.mjs render <chart-dir> <out-dir> | probe <inject-url> <ca-file>\n');
  process.exit(2);
}
