// CoreDNS for the data-path suite, built from its Go module with only the plugins the suite's two
// Corefiles use (CoreDNS's documented way to build a custom server: import the plugin packages,
// set dnsserver.Directives, run coremain):
//   - the wpgw-dns Corefile the controller writes (src/core/desired/dns.ts corefile()):
//     errors, health, ready, hosts, template, forward, cache, loop, reload;
//   - cluster DNS (kube-system/kube-dns): kubernetes, plus log so the suite can see which queries
//     reached it.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/template"
)

// linked lists the plugins imported above. Directives keeps upstream's order (plugin.cfg, which
// decides the order plugins see a query) restricted to them, so a Corefile naming any other
// plugin fails to parse instead of being silently ignored.
var linked = map[string]bool{
	"cache": true, "errors": true, "forward": true, "health": true, "hosts": true, "kubernetes": true,
	"log": true, "loop": true, "ready": true, "reload": true, "template": true,
}

func init() {
	var ds []string
	for _, d := range dnsserver.Directives {
		if linked[d] {
			ds = append(ds, d)
		}
	}
	if len(ds) != len(linked) {
		panic("coredns: a linked plugin is missing from upstream's directive list")
	}
	dnsserver.Directives = ds
}

func main() {
	coremain.Run()
}
