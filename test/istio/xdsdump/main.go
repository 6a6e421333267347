// xdsdump connects to istiod's plaintext xDS port (the 15010 equivalent) as one proxy, the way
// istio-agent/Envoy would (one ADS stream, State-of-the-World: CDS + LDS wildcard, then EDS for
// the EDS clusters and RDS for every route name the listeners reference), and prints everything
// it received as one JSON document on stdout:
//
//	{"node": {...}, "listeners": [...], "routes": [...], "clusters": [...], "endpoints": [...]}
//
// Each resource is the protojson rendering of the Envoy proto (typed_config Any fields are
// expanded because every Envoy extension type Istio can emit is linked in through
// istio.io/istio/pkg/config/xds). The wire types come from go-control-plane, the same module
// istiod serves them with.
//
// It exits after every subscribed type has been answered and the stream has been quiet for
// --settle. Exit code 2 with a message on stderr on timeout, rejection or a connection error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	// Registers every Envoy extension proto Istio may put in an Any (HCM, RBAC, TLS, ...), and
	// the TypedStruct wrappers Istio uses for its own filters (istio.stats, metadata exchange).
	_ "github.com/cncf/xds/go/udpa/type/v1"
	_ "github.com/cncf/xds/go/xds/type/v3"
	_ "istio.io/istio/pkg/config/xds"
)

const (
	typeCluster  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	typeListener = "type.googleapis.com/envoy.config.listener.v3.Listener"
	typeRoute    = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	typeEndpoint = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
)

type stringMap map[string]string

func (m stringMap) String() string { return fmt.Sprint(map[string]string(m)) }
func (m stringMap) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want key=value, got %q", v)
	}
	m[k] = val
	return nil
}

func main() {
	var (
		addr       = flag.String("addr", "127.0.0.1:15010", "istiod plaintext xDS address")
		nodeType   = flag.String("type", "sidecar", "proxy type: sidecar or router")
		ip         = flag.String("ip", "", "pod IP (the proxy's primary key in istiod)")
		pod        = flag.String("pod", "", "pod name")
		ns         = flag.String("namespace", "default", "pod namespace")
		sa         = flag.String("sa", "default", "service account name")
		clusterID  = flag.String("cluster-id", "Kubernetes", "CLUSTER_ID")
		version    = flag.String("istio-version", "1.30.3", "ISTIO_VERSION the proxy claims")
		domain     = flag.String("domain", "cluster.local", "DNS domain (node id suffix)")
		workload   = flag.String("workload", "", "WORKLOAD_NAME (defaults to the pod name)")
		nodeName   = flag.String("node-name", "", "NODE_NAME")
		metaJSON   = flag.String("meta-json", "", "extra node metadata, a JSON object merged last")
		timeout    = flag.Duration("timeout", 30*time.Second, "give up after this long")
		settle     = flag.Duration("settle", 1500*time.Millisecond, "quiet period after the last response")
		labels     = stringMap{}
		annotation = stringMap{}
	)
	flag.Var(labels, "label", "pod label key=value (repeatable)")
	flag.Var(annotation, "annotation", "pod annotation key=value (repeatable)")
	flag.Parse()
	if *ip == "" || *pod == "" {
		fail(errors.New("--ip and --pod are required"))
	}
	if *nodeType != "sidecar" && *nodeType != "router" {
		fail(fmt.Errorf("--type must be sidecar or router, got %q", *nodeType))
	}
	if *workload == "" {
		*workload = *pod
	}

	meta := map[string]any{
		"ISTIO_VERSION":     *version,
		"CLUSTER_ID":        *clusterID,
		"NAMESPACE":         *ns,
		"NAME":              *pod,
		"SERVICE_ACCOUNT":   *sa,
		"INSTANCE_IPS":      *ip,
		"WORKLOAD_NAME":     *workload,
		"MESH_ID":           *domain,
		"INTERCEPTION_MODE": "REDIRECT",
		"LABELS":            toAny(labels),
	}
	if len(annotation) > 0 {
		meta["ANNOTATIONS"] = toAny(annotation)
	}
	if *nodeName != "" {
		meta["NODE_NAME"] = *nodeName
	}
	if *metaJSON != "" {
		extra := map[string]any{}
		if err := json.Unmarshal([]byte(*metaJSON), &extra); err != nil {
			fail(fmt.Errorf("--meta-json: %w", err))
		}
		for k, v := range extra {
			meta[k] = v
		}
	}
	md, err := structpb.NewStruct(meta)
	if err != nil {
		fail(fmt.Errorf("metadata: %w", err))
	}
	node := &core.Node{
		Id:       fmt.Sprintf("%s~%s~%s.%s~%s.svc.%s", *nodeType, *ip, *pod, *ns, *ns, *domain),
		Cluster:  *workload + "." + *ns,
		Metadata: md,
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	out, err := dump(ctx, *addr, node, *settle)
	if err != nil {
		fail(err)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		fail(err)
	}
}

func toAny(m map[string]string) map[string]any {
	r := make(map[string]any, len(m))
	for k, v := range m {
		r[k] = v
	}
	return r
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "xdsdump: %v\n", err)
	os.Exit(2)
}

type result struct {
	Node      json.RawMessage   `json:"node"`
	Listeners []json.RawMessage `json:"listeners"`
	Routes    []json.RawMessage `json:"routes"`
	Clusters  []json.RawMessage `json:"clusters"`
	Endpoints []json.RawMessage `json:"endpoints"`
}

// subscription: the SotW state of one type on the stream.
type subscription struct {
	names    []string // nil = wildcard
	version  string
	nonce    string
	answered bool // a response arrived for the current names
	res      map[string]proto.Message
}

func dump(ctx context.Context, addr string, node *core.Node, settle time.Duration) (*result, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30)))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return nil, fmt.Errorf("ADS stream to %s: %w", addr, err)
	}

	subs := map[string]*subscription{
		typeCluster:  {res: map[string]proto.Message{}},
		typeListener: {res: map[string]proto.Message{}},
	}
	first := true
	send := func(typeURL string) error {
		s := subs[typeURL]
		req := &discovery.DiscoveryRequest{TypeUrl: typeURL, ResourceNames: s.names, VersionInfo: s.version, ResponseNonce: s.nonce}
		if first {
			req.Node = node
			first = false
		}
		return stream.Send(req)
	}
	// Envoy's order: CDS, then LDS (EDS/RDS follow from their answers).
	if err := send(typeCluster); err != nil {
		return nil, err
	}
	if err := send(typeListener); err != nil {
		return nil, err
	}

	type recv struct {
		resp *discovery.DiscoveryResponse
		err  error
	}
	ch := make(chan recv, 16)
	go func() {
		for {
			r, err := stream.Recv()
			ch <- recv{r, err}
			if err != nil {
				return
			}
		}
	}()

	quiet := time.NewTimer(time.Hour)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("timed out waiting for xDS (state: %s)", describe(subs))
		case <-quiet.C:
			if allAnswered(subs) {
				return collect(node, subs)
			}
			quiet.Reset(settle)
		case r := <-ch:
			if r.err != nil {
				return nil, fmt.Errorf("ADS stream: %w", r.err)
			}
			resp := r.resp
			s := subs[resp.TypeUrl]
			if s == nil {
				// Not subscribed (e.g. an unsolicited push of another type): ignore.
				continue
			}
			decoded, err := decode(resp)
			if err != nil {
				return nil, err
			}
			s.version, s.nonce, s.answered = resp.VersionInfo, resp.Nonce, true
			if s.names == nil {
				s.res = decoded // wildcard SotW: the response is the full set
			} else {
				for k, v := range decoded {
					s.res[k] = v
				}
			}
			if err := send(resp.TypeUrl); err != nil { // ACK
				return nil, err
			}
			switch resp.TypeUrl {
			case typeCluster:
				if err := resubscribe(subs, typeEndpoint, edsClusters(s.res), send); err != nil {
					return nil, err
				}
			case typeListener:
				if err := resubscribe(subs, typeRoute, routeNames(s.res), send); err != nil {
					return nil, err
				}
			}
			quiet.Reset(settle)
		}
	}
}

// resubscribe sets the resource names of a non-wildcard type and sends the request when they
// changed (an empty set is not subscribed at all).
func resubscribe(subs map[string]*subscription, typeURL string, names []string, send func(string) error) error {
	s := subs[typeURL]
	if s == nil {
		if len(names) == 0 {
			return nil
		}
		s = &subscription{res: map[string]proto.Message{}}
		subs[typeURL] = s
	} else if equal(s.names, names) {
		return nil
	}
	s.names = names
	s.answered = false
	keep := map[string]proto.Message{}
	for _, n := range names {
		if v, ok := s.res[n]; ok {
			keep[n] = v
		}
	}
	s.res = keep
	return send(typeURL)
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func allAnswered(subs map[string]*subscription) bool {
	for _, s := range subs {
		if !s.answered {
			return false
		}
	}
	return true
}

func describe(subs map[string]*subscription) string {
	var parts []string
	for t, s := range subs {
		parts = append(parts, fmt.Sprintf("%s answered=%v resources=%d", t[strings.LastIndex(t, ".")+1:], s.answered, len(s.res)))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

func decode(resp *discovery.DiscoveryResponse) (map[string]proto.Message, error) {
	out := map[string]proto.Message{}
	for _, a := range resp.Resources {
		var m proto.Message
		var name string
		switch resp.TypeUrl {
		case typeCluster:
			c := &cluster.Cluster{}
			m, name = c, ""
			if err := a.UnmarshalTo(c); err != nil {
				return nil, err
			}
			name = c.Name
		case typeListener:
			l := &listener.Listener{}
			if err := a.UnmarshalTo(l); err != nil {
				return nil, err
			}
			m, name = l, l.Name
		case typeRoute:
			r := &route.RouteConfiguration{}
			if err := a.UnmarshalTo(r); err != nil {
				return nil, err
			}
			m, name = r, r.Name
		case typeEndpoint:
			e := &endpoint.ClusterLoadAssignment{}
			if err := a.UnmarshalTo(e); err != nil {
				return nil, err
			}
			m, name = e, e.ClusterName
		default:
			return nil, fmt.Errorf("unexpected type %s", resp.TypeUrl)
		}
		out[name] = m
	}
	return out, nil
}

func edsClusters(res map[string]proto.Message) []string {
	var names []string
	for n, m := range res {
		c := m.(*cluster.Cluster)
		if c.GetType() == cluster.Cluster_EDS {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// routeNames: every RDS route_config_name an HTTP connection manager in the listeners uses.
func routeNames(res map[string]proto.Message) []string {
	set := map[string]bool{}
	for _, m := range res {
		l := m.(*listener.Listener)
		chains := append([]*listener.FilterChain{}, l.FilterChains...)
		if l.DefaultFilterChain != nil {
			chains = append(chains, l.DefaultFilterChain)
		}
		for _, fc := range chains {
			for _, f := range fc.Filters {
				tc := f.GetTypedConfig()
				if tc == nil || !tc.MessageIs(&hcm.HttpConnectionManager{}) {
					continue
				}
				h := &hcm.HttpConnectionManager{}
				if err := tc.UnmarshalTo(h); err != nil {
					continue
				}
				if rds := h.GetRds(); rds != nil && rds.RouteConfigName != "" {
					set[rds.RouteConfigName] = true
				}
			}
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func collect(node *core.Node, subs map[string]*subscription) (*result, error) {
	mo := protojson.MarshalOptions{UseProtoNames: true}
	one := func(m proto.Message) (json.RawMessage, error) {
		b, err := mo.Marshal(m)
		return json.RawMessage(b), err
	}
	all := func(typeURL string) ([]json.RawMessage, error) {
		out := []json.RawMessage{}
		s := subs[typeURL]
		if s == nil {
			return out, nil
		}
		keys := make([]string, 0, len(s.res))
		for k := range s.res {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b, err := one(s.res[k])
			if err != nil {
				return nil, fmt.Errorf("marshal %s: %w", k, err)
			}
			out = append(out, b)
		}
		return out, nil
	}
	var r result
	var err error
	if r.Node, err = one(node); err != nil {
		return nil, err
	}
	if r.Listeners, err = all(typeListener); err != nil {
		return nil, err
	}
	if r.Routes, err = all(typeRoute); err != nil {
		return nil, err
	}
	if r.Clusters, err = all(typeCluster); err != nil {
		return nil, err
	}
	if r.Endpoints, err = all(typeEndpoint); err != nil {
		return nil, err
	}
	return &r, nil
}
