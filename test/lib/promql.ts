// The metric names a PromQL expression reads, without a PromQL engine: enough of the grammar to
// tell metric names from functions, aggregations, keywords, label names, durations and strings.
// Used to hold the chart's rules and dashboard to the metrics wpgw really exports.

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan', 'atan2']);

export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings (label values, regexes)
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:ms|[smhdwy])?(?![\w:])/g, ' '); // numbers, durations
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const after = stripped.slice(m.index + m[0].length);
    if (/^\s*\(/.test(after)) continue; // a function or an aggregation
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names].sort();
}

/** Metric families in Prometheus exposition text, by their `# TYPE` lines: name -> type. */
export function exposedFamilies(text: string): Map<string, string> {
  const families = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) families.set(m[1]!, m[2]!);
  return families;
}

/** Whether `name` is a series name of one of the families (histograms and summaries add suffixes). */
export function isExposed(name: string, families: Map<string, string>): boolean {
  // A classic histogram has no series under its bare name; a summary's quantiles do.
  if (families.has(name)) return families.get(name) !== 'histogram';
  const base = name.replace(/_(bucket|sum|count)$/, '');
  const type = families.get(base);
  return base !== name && (type === 'histogram' || type === 'summary') && !(name.endsWith('_bucket') && type === 'summary');
}
