// istio-analyze runs Istio's configuration analyzers against a live cluster, exactly as
// `istioctl analyze --all-namespaces` does (the same library: istio.io/istio/pkg/config/analysis
// with a running-Kubernetes source, all analyzers combined), and prints the result as JSON:
//
//	{"executed": [...analyzer names], "skipped": [...], "messages": [
//	  {"code": "IST0101", "level": "Error", "origin": "VirtualService shop/x", "message": "...", "text": "..."}]}
//
// Exit code 2 with a message on stderr if the analysis itself fails (findings are data, not
// failures: the caller decides which levels matter).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"

	"istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/config/analysis/analyzers"
	"istio.io/istio/pkg/config/analysis/local"
	"istio.io/istio/pkg/config/resource"
	"istio.io/istio/pkg/kube"
	"istio.io/istio/pkg/log"
)

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	istioNamespace := flag.String("istio-namespace", "istio-system", "Istio's control plane namespace")
	meshConfig := flag.String("mesh-config", "", "mesh config file (default: ConfigMap istio in --istio-namespace)")
	clusterID := flag.String("cluster-id", "Kubernetes", "cluster ID")
	flag.Parse()

	// Istio logs to stdout by default; stdout is for the JSON.
	lo := log.DefaultOptions()
	lo.OutputPaths = []string{"stderr"}
	lo.ErrorOutputPaths = []string{"stderr"}
	lo.SetDefaultOutputLevel(log.OverrideScopeName, log.WarnLevel)
	if err := log.Configure(lo); err != nil {
		fail(err)
	}

	client, err := kube.NewCLIClient(kube.BuildClientCmd(*kubeconfig, ""), kube.WithCluster(cluster.ID(*clusterID)))
	if err != nil {
		fail(err)
	}
	// namespace "" = all namespaces, like --all-namespaces
	sa := local.NewIstiodAnalyzer(analyzers.AllCombined(), "", resource.Namespace(*istioNamespace), nil)
	sa.AddRunningKubeSourceWithRevision(kube.EnableCrdWatcher(client), "", false)
	if *meshConfig != "" {
		if err := sa.AddFileKubeMeshConfig(*meshConfig); err != nil {
			fail(err)
		}
	}
	cancel := make(chan struct{})
	defer close(cancel)
	res, err := sa.Analyze(cancel)
	if err != nil {
		fail(err)
	}
	out := struct {
		Executed []string         `json:"executed"`
		Skipped  []string         `json:"skipped"`
		Messages []map[string]any `json:"messages"`
	}{Executed: append([]string{}, res.ExecutedAnalyzers...), Skipped: append([]string{}, res.SkippedAnalyzers...), Messages: []map[string]any{}}
	sort.Strings(out.Executed)
	sort.Strings(out.Skipped)
	for _, m := range *res.Messages.SetDocRef("istioctl-analyze") {
		u := m.Unstructured(true)
		u["text"] = m.String()
		out.Messages = append(out.Messages, u)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "istio-analyze: %v\n", err)
	os.Exit(2)
}
