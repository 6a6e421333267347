// Prometheus exposition text: which metric families a scrape exports, and whether a series name
// a PromQL selector reads belongs to one (the names come from Prometheus's own parser,
// test/monitoring/promql-names). Holds the chart's rules and dashboard to the real scrapes.

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
  return (
    base !== name && (type === 'histogram' || type === 'summary') && !(name.endsWith('_bucket') && type === 'summary')
  );
}
