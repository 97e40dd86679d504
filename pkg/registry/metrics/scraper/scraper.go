// Package scraper is the metrics.Source of nodes that run pods: as
// metrics-server v0.7, every resolution (15 s) it reads each Ready node's
// kubelet /metrics/resource, keeps the last two points of each node and
// container, and reports CPU as the rate between them and memory as the
// last working set.
package scraper

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/types"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/klog/v2"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/skiff-dev/skiff/pkg/kubeletclient"
	"github.com/skiff-dev/skiff/pkg/registry/metrics"
)

// Resolution is how often kubelets are scraped: metrics-server's
// --metric-resolution default. Integration tests shorten it before
// starting a server.
var Resolution = 15 * time.Second

// maxResponse bounds what is read of one kubelet's answer.
const maxResponse = 32 << 20

// concurrency bounds the kubelets scraped at once.
const concurrency = 16

// Client reads one node's resource metrics.
type Client interface {
	Scrape(ctx context.Context, node *corev1.Node) (*Batch, error)
}

// Scraper scrapes the nodes' kubelets and is the metrics.Source of what
// they reported.
type Scraper struct {
	nodes      rest.Lister
	client     Client
	resolution time.Duration
	timeout    time.Duration
	store      *store
}

var _ metrics.Source = &Scraper{}

// New scrapes the nodes listed by nodes through client every resolution;
// each scrape times out after 90 % of it, as metrics-server's.
func New(nodes rest.Lister, client Client, resolution time.Duration) *Scraper {
	return &Scraper{
		nodes: nodes, client: client, resolution: resolution,
		timeout: resolution * 9 / 10, store: newStore(resolution),
	}
}

// Install builds the Scraper of the core nodes storage, reaching kubelets
// as kubelet says, and runs it from the server's start to its stop.
func Install(server *genericapiserver.GenericAPIServer, core map[string]rest.Storage, kubelet kubeletclient.Config) (*Scraper, error) {
	nodes, ok := core["nodes"].(interface {
		rest.Lister
		kubeletclient.NodeGetter
	})
	if !ok {
		return nil, fmt.Errorf("the metrics scraper needs the core nodes storage")
	}
	conns, err := kubeletclient.New(nodes, kubelet)
	if err != nil {
		return nil, fmt.Errorf("metrics scraper: %w", err)
	}
	s := New(nodes, &KubeletClient{Connections: conns}, Resolution)
	err = server.AddPostStartHook("skiff-metrics-scraper", func(hookCtx genericapiserver.PostStartHookContext) error {
		go s.Run(hookCtx)
		return nil
	})
	return s, err
}

// Run scrapes now and then every resolution until ctx ends.
func (s *Scraper) Run(ctx context.Context) {
	klog.InfoS("Scraping the kubelets' resource metrics", "resolution", s.resolution)
	ticker := time.NewTicker(s.resolution)
	defer ticker.Stop()
	for {
		s.ScrapeOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// ScrapeOnce scrapes every Ready node that runs pods (simulated nodes are
// not scraped) and stores what answered; nodes that did not lose their
// points.
func (s *Scraper) ScrapeOnce(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	obj, err := s.nodes.List(genericapirequest.WithNamespace(ctx, ""), &metainternalversion.ListOptions{})
	if err != nil {
		klog.ErrorS(err, "Listing nodes to scrape failed")
		return
	}
	list, ok := obj.(*corev1.NodeList)
	if !ok {
		klog.ErrorS(nil, "Unexpected node list", "type", fmt.Sprintf("%T", obj))
		return
	}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		batches = map[string]*Batch{}
		slots   = make(chan struct{}, concurrency)
	)
	for i := range list.Items {
		node := &list.Items[i]
		if metrics.IsSimulated(node) || !ready(node) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			b, err := s.client.Scrape(ctx, node)
			if err != nil {
				klog.ErrorS(err, "Failed to scrape node", "node", klog.KObj(node))
				return
			}
			mu.Lock()
			batches[node.Name] = b
			mu.Unlock()
		}()
	}
	wg.Wait()
	s.store.put(batches)
}

func ready(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// NodeUsage is the node's usage between its last two scrapes.
func (s *Scraper) NodeUsage(node *corev1.Node, _ []*corev1.Pod) (corev1.ResourceList, metrics.TimeInfo, bool) {
	return s.store.node(node.Name)
}

// PodUsage is the usage of the pod's containers between their last two
// scrapes.
func (s *Scraper) PodUsage(_ *corev1.Node, pod *corev1.Pod) ([]metricsv1beta1.ContainerMetrics, metrics.TimeInfo, bool) {
	return s.store.pod(types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name})
}

// KubeletClient reads /metrics/resource from the node's kubelet with the
// API server's kubelet client certificate.
type KubeletClient struct {
	Connections kubeletclient.ConnectionInfoGetter
}

// Scrape GETs the node's /metrics/resource and decodes it.
func (k *KubeletClient) Scrape(ctx context.Context, node *corev1.Node) (*Batch, error) {
	info, err := k.Connections.GetConnectionInfo(ctx, types.NodeName(node.Name))
	if err != nil {
		return nil, fmt.Errorf("kubelet connection: %w", err)
	}
	u := url.URL{Scheme: info.Scheme, Host: info.HostPort(), Path: "/metrics/resource"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	// The text format: the kubelet would otherwise pick protobuf or
	// OpenMetrics.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	scrapedAt := time.Now()
	resp, err := (&http.Client{Transport: info.Transport}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u.String(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET %s: %s: %s", u.String(), resp.Status, body)
	}
	return Decode(io.LimitReader(resp.Body, maxResponse), scrapedAt, node.Name)
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
