// Misplaced-setting hints (src/core/hints.ts): one definition, shown by render, by the controller's
// Events and by `wpgw status`; here the definitions themselves and that render and the webhook's
// pod warning carry the same text.
import { describe, expect, it } from 'vitest';
import { namespaceHints, outboundNotWindowsHint, settingHints } from '../../src/core/hints.js';
import { mutatePod } from '../../src/core/pod.js';
import { render } from '../../src/render.js';
import { staticContext } from '../lib/admission.js';

describe('misplaced-setting hints', () => {
  it('a namespace labelled wpgw.io/inject with a yes-like value that is not "enabled" is told the value that opts in', () => {
    for (const value of ['true', 'yes', 'True', '1']) {
      expect(namespaceHints('shop', { labels: { 'wpgw.io/inject': value } })).toEqual([
        `wpgw.io/inject=${value} does not opt the namespace in: the value that does is "enabled": kubectl label --overwrite namespace shop wpgw.io/inject=enabled`,
      ]);
    }
    expect(namespaceHints('shop', { labels: { 'wpgw.io/inject': 'enabled' } })).toEqual([]);
    expect(namespaceHints('shop', { labels: { 'wpgw.io/inject': 'disabled' } })).toEqual([]);
  });

  it('render, the pod warning at admission and settingHints (Events, status) say the same about outbound on a non-Windows template', () => {
    const template = {
      metadata: { labels: { app: 'web' }, annotations: { 'wpgw.io/outbound': 'api.example.com:443' } },
      spec: { containers: [{ name: 'c', image: 'i' }] },
    };
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'shop' },
      spec: { selector: { matchLabels: { app: 'web' } }, template },
    };
    const [hint, ...more] = settingHints({ metadata: { name: 'shop' } }, { workloads: [deployment] }, () => undefined);
    expect(more).toEqual([]);
    expect(hint).toMatchObject({
      kind: 'Deployment',
      name: 'web',
      apiVersion: 'apps/v1',
      message: `its pod template ${outboundNotWindowsHint()}`,
    });
    const pod = mutatePod({ pod: template, namespace: 'shop', ctx: staticContext() });
    expect(pod.action).toBe('skip');
    const warnings = pod.action === 'skip' ? pod.warnings : [];
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.endsWith(`: ${outboundNotWindowsHint()}`)).toBe(true);
    const r = render(JSON.stringify(deployment));
    expect(
      r.report.some((l) => l.includes(`Deployment/web in namespace shop:`) && l.endsWith(outboundNotWindowsHint())),
    ).toBe(true);
  });

  it('an opted-out or Windows template with outbound, and a template without it, get no hint', () => {
    const d = (
      name: string,
      labels: Record<string, string>,
      spec: Record<string, unknown>,
      annotations: Record<string, string> = { 'wpgw.io/outbound': 'x.example.com:443' },
    ) => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name },
      spec: { template: { metadata: { labels, annotations }, spec: { containers: [{ name: 'c' }], ...spec } } },
    });
    expect(
      settingHints(
        { metadata: { name: 'shop' } },
        {
          workloads: [
            d('out', { 'wpgw.io/inject': 'false' }, {}),
            d('win', {}, { os: { name: 'windows' } }),
            d('plain', {}, {}, {}),
          ],
        },
        () => undefined,
      ),
    ).toEqual([]);
  });
});
