// The Node.js version wpgw needs, checked before anything else loads: its dependencies (undici,
// fastify) fail on older Node at import time with a stack trace that names neither.
// Keep in step with "engines" in package.json (a unit test checks).
export const MIN_NODE_MAJOR = 24;

/** The one-line complaint for an unsupported Node, or undefined when `version` ("24.1.0") will do. */
export function nodeVersionProblem(version: string): string | undefined {
  const major = Number(version.split('.')[0]);
  if (Number.isInteger(major) && major >= MIN_NODE_MAJOR) return undefined;
  return `wpgw needs Node.js ${MIN_NODE_MAJOR} or newer; this is Node.js ${version} (${process.execPath}). With npm scripts, "npm ci" installs Node ${MIN_NODE_MAJOR} locally.`;
}
