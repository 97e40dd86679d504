package server

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	compbasemetrics "k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// The kubelet's own metrics of /metrics, upstream's names and help.
var (
	runningPodsDesc = compbasemetrics.NewDesc("kubelet_running_pods",
		"Number of pods that have a running pod sandbox", nil, nil, compbasemetrics.ALPHA, "")
	runningContainersDesc = compbasemetrics.NewDesc("kubelet_running_containers",
		"Number of containers currently running", []string{"container_state"}, nil, compbasemetrics.ALPHA, "")
	desiredPodsDesc = compbasemetrics.NewDesc("kubelet_desired_pods",
		"The number of pods the kubelet is being instructed to run. static is true if the pod is not from the apiserver.", []string{"static"}, nil, compbasemetrics.ALPHA, "")
)

// podMetrics counts at scrape time: sandboxes and containers from the
// runtime, desired pods from the pod source.
type podMetrics struct {
	compbasemetrics.BaseStableCollector
	s *Server
}

func (c *podMetrics) DescribeWithStability(ch chan<- *compbasemetrics.Desc) {
	ch <- runningPodsDesc
	ch <- runningContainersDesc
	ch <- desiredPodsDesc
}

func (c *podMetrics) CollectWithStability(ch chan<- compbasemetrics.Metric) {
	static, api := 0, 0
	for _, p := range c.s.cfg.Pods.Pods() {
		if src := p.Annotations["kubernetes.io/config.source"]; src != "" && src != "api" {
			static++
		} else {
			api++
		}
	}
	ch <- compbasemetrics.NewLazyConstMetric(desiredPodsDesc, compbasemetrics.GaugeValue, float64(api), "false")
	ch <- compbasemetrics.NewLazyConstMetric(desiredPodsDesc, compbasemetrics.GaugeValue, float64(static), "true")
	if c.s.cfg.Runtime == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs := c.s.cfg.Runtime.RuntimeService()
	sandboxes, err := rs.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}})
	if err != nil {
		klog.V(2).InfoS("Listing sandboxes for metrics failed", "err", err)
		return
	}
	ch <- compbasemetrics.NewLazyConstMetric(runningPodsDesc, compbasemetrics.GaugeValue, float64(len(sandboxes)))
	containers, err := rs.ListContainers(ctx, nil)
	if err != nil {
		klog.V(2).InfoS("Listing containers for metrics failed", "err", err)
		return
	}
	// Upstream's container states.
	counts := map[string]int{"created": 0, "running": 0, "exited": 0, "unknown": 0}
	for _, ctr := range containers {
		switch ctr.GetState() {
		case runtimeapi.ContainerState_CONTAINER_CREATED:
			counts["created"]++
		case runtimeapi.ContainerState_CONTAINER_RUNNING:
			counts["running"]++
		case runtimeapi.ContainerState_CONTAINER_EXITED:
			counts["exited"]++
		default:
			counts["unknown"]++
		}
	}
	for state, n := range counts {
		ch <- compbasemetrics.NewLazyConstMetric(runningContainersDesc, compbasemetrics.GaugeValue, float64(n), state)
	}
}

// metricsHandler is /metrics: the process's legacy registry (as
// upstream's kubelet) and this server's pod counts.
func (s *Server) metricsHandler() http.Handler {
	return compbasemetrics.HandlerFor(prometheus.Gatherers{legacyregistry.DefaultGatherer, s.registry},
		compbasemetrics.HandlerOpts{ErrorHandling: compbasemetrics.ContinueOnError})
}

// The resource metrics of /metrics/resource (what metrics-server reads),
// upstream's names.
var (
	nodeCPUUsageDesc = compbasemetrics.NewDesc("node_cpu_usage_seconds_total",
		"Cumulative cpu time consumed by the node in core-seconds", nil, nil, compbasemetrics.STABLE, "")
	nodeMemoryUsageDesc = compbasemetrics.NewDesc("node_memory_working_set_bytes",
		"Current working set of the node in bytes", nil, nil, compbasemetrics.STABLE, "")
	containerCPUUsageDesc = compbasemetrics.NewDesc("container_cpu_usage_seconds_total",
		"Cumulative cpu time consumed by the container in core-seconds", []string{"container", "pod", "namespace"}, nil, compbasemetrics.STABLE, "")
	containerMemoryUsageDesc = compbasemetrics.NewDesc("container_memory_working_set_bytes",
		"Current working set of the container in bytes", []string{"container", "pod", "namespace"}, nil, compbasemetrics.STABLE, "")
	containerStartTimeDesc = compbasemetrics.NewDesc("container_start_time_seconds",
		"Start time of the container since unix epoch in seconds", []string{"container", "pod", "namespace"}, nil, compbasemetrics.STABLE, "")
	podCPUUsageDesc = compbasemetrics.NewDesc("pod_cpu_usage_seconds_total",
		"Cumulative cpu time consumed by the pod in core-seconds", []string{"pod", "namespace"}, nil, compbasemetrics.STABLE, "")
	podMemoryUsageDesc = compbasemetrics.NewDesc("pod_memory_working_set_bytes",
		"Current working set of the pod in bytes", []string{"pod", "namespace"}, nil, compbasemetrics.STABLE, "")
	resourceScrapeErrorDesc = compbasemetrics.NewDesc("resource_scrape_error",
		"1 if there was an error while getting container metrics, 0 otherwise", nil, nil, compbasemetrics.STABLE, "")
)

type resourceMetrics struct {
	compbasemetrics.BaseStableCollector
	s *Server
}

func (c *resourceMetrics) DescribeWithStability(ch chan<- *compbasemetrics.Desc) {
	for _, d := range []*compbasemetrics.Desc{nodeCPUUsageDesc, nodeMemoryUsageDesc, containerCPUUsageDesc, containerMemoryUsageDesc, containerStartTimeDesc, podCPUUsageDesc, podMemoryUsageDesc, resourceScrapeErrorDesc} {
		ch <- d
	}
}

func (c *resourceMetrics) CollectWithStability(ch chan<- compbasemetrics.Metric) {
	errors := 0.0
	defer func() {
		ch <- compbasemetrics.NewLazyConstMetric(resourceScrapeErrorDesc, compbasemetrics.GaugeValue, errors)
	}()
	if c.s.cfg.Stats == nil {
		errors = 1
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	summary, err := c.s.cfg.Stats.Summary(ctx, true)
	if err != nil {
		errors = 1
		klog.ErrorS(err, "Error getting summary for resourceMetric prometheus endpoint")
		return
	}
	at := func(t time.Time, m compbasemetrics.Metric) compbasemetrics.Metric {
		return compbasemetrics.NewLazyMetricWithTimestamp(t, m)
	}
	n := summary.Node
	if n.CPU != nil && n.CPU.UsageCoreNanoSeconds != nil {
		ch <- at(n.CPU.Time.Time, compbasemetrics.NewLazyConstMetric(nodeCPUUsageDesc, compbasemetrics.CounterValue, seconds(*n.CPU.UsageCoreNanoSeconds)))
	}
	if n.Memory != nil && n.Memory.WorkingSetBytes != nil {
		ch <- at(n.Memory.Time.Time, compbasemetrics.NewLazyConstMetric(nodeMemoryUsageDesc, compbasemetrics.GaugeValue, float64(*n.Memory.WorkingSetBytes)))
	}
	for _, p := range summary.Pods {
		for _, ctr := range p.Containers {
			collectContainer(ch, p, ctr, at)
		}
		if p.CPU != nil && p.CPU.UsageCoreNanoSeconds != nil {
			ch <- at(p.CPU.Time.Time, compbasemetrics.NewLazyConstMetric(podCPUUsageDesc, compbasemetrics.CounterValue, seconds(*p.CPU.UsageCoreNanoSeconds), p.PodRef.Name, p.PodRef.Namespace))
		}
		if p.Memory != nil && p.Memory.WorkingSetBytes != nil {
			ch <- at(p.Memory.Time.Time, compbasemetrics.NewLazyConstMetric(podMemoryUsageDesc, compbasemetrics.GaugeValue, float64(*p.Memory.WorkingSetBytes), p.PodRef.Name, p.PodRef.Namespace))
		}
	}
}

func collectContainer(ch chan<- compbasemetrics.Metric, p statsapi.PodStats, c statsapi.ContainerStats, at func(time.Time, compbasemetrics.Metric) compbasemetrics.Metric) {
	labels := []string{c.Name, p.PodRef.Name, p.PodRef.Namespace}
	if c.StartTime.Unix() > 0 {
		ch <- compbasemetrics.NewLazyConstMetric(containerStartTimeDesc, compbasemetrics.GaugeValue, float64(c.StartTime.UnixNano())/float64(time.Second), labels...)
	}
	if c.CPU != nil && c.CPU.UsageCoreNanoSeconds != nil {
		ch <- at(c.CPU.Time.Time, compbasemetrics.NewLazyConstMetric(containerCPUUsageDesc, compbasemetrics.CounterValue, seconds(*c.CPU.UsageCoreNanoSeconds), labels...))
	}
	if c.Memory != nil && c.Memory.WorkingSetBytes != nil {
		ch <- at(c.Memory.Time.Time, compbasemetrics.NewLazyConstMetric(containerMemoryUsageDesc, compbasemetrics.GaugeValue, float64(*c.Memory.WorkingSetBytes), labels...))
	}
}

func seconds(ns uint64) float64 { return float64(ns) / float64(time.Second) }

// resourceMetricsHandler is /metrics/resource.
func (s *Server) resourceMetricsHandler() http.Handler {
	reg := compbasemetrics.NewKubeRegistry()
	reg.CustomMustRegister(&resourceMetrics{s: s})
	return compbasemetrics.HandlerFor(reg, compbasemetrics.HandlerOpts{ErrorHandling: compbasemetrics.ContinueOnError})
}
