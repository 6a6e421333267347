// Defaults of the desired-state options the controller and `wpgw status` use.
import type { DesiredOptions } from '../core/desired-types.js';
import { DEFAULT_CLUSTER_DOMAIN } from '../names.js';
import { DEFAULT_COREDNS_IMAGE } from '../render.js';

export const DEFAULT_DESIRED_OPTIONS: DesiredOptions = {
  clusterDomain: DEFAULT_CLUSTER_DOMAIN,
  defaultGatewayReplicas: 2,
  corednsImage: DEFAULT_COREDNS_IMAGE,
};
