// promql-names: parses PromQL expressions with Prometheus's own parser and prints, per
// expression, the metric names its selectors read (or the parse error). Input: a JSON array of
// strings on stdin; output: a JSON array of {names, error}. Used by test/e2e/monitoring.test.ts so
// the chart's alerts and dashboard are checked as Prometheus reads them.
package main

import (
	"encoding/json"
	"os"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

type result struct {
	Names []string `json:"names"`
	Error string   `json:"error,omitempty"`
}

func main() {
	var exprs []string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		os.Stderr.WriteString("promql-names: stdin must be a JSON array of strings: " + err.Error() + "\n")
		os.Exit(2)
	}
	p := parser.NewParser(parser.Options{})
	out := make([]result, 0, len(exprs))
	for _, e := range exprs {
		expr, err := p.ParseExpr(e)
		if err != nil {
			out = append(out, result{Names: []string{}, Error: err.Error()})
			continue
		}
		seen := map[string]bool{}
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				name := vs.Name
				for _, m := range vs.LabelMatchers {
					if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
						name = m.Value
					}
				}
				seen[name] = true
			}
			return nil
		})
		names := make([]string, 0, len(seen))
		for n := range seen {
			names = append(names, n)
		}
		sort.Strings(names)
		out = append(out, result{Names: names})
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}
