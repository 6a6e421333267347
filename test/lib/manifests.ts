// The one Deployment builder of the e2e and data-path suites: a Deployment `name` whose pods carry
// app=<name> (its selector) plus the given labels and annotations, as a user writes one.

type Obj = Record<string, unknown>;

export interface PodTemplate {
  /** Pod labels besides app=<name>. */
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  spec: Obj;
  replicas?: number;
}

export function deployment(name: string, ns: string, template: PodTemplate): Obj {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns },
    spec: {
      replicas: template.replicas ?? 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: {
          labels: { app: name, ...template.labels },
          ...(template.annotations ? { annotations: template.annotations } : {}),
        },
        spec: template.spec,
      },
    },
  };
}
