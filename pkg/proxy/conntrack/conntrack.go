// Package conntrack removes stale UDP conntrack entries after endpoint
// changes, as upstream kube-proxy's CleanStaleEntries: a UDP "connection"
// to a service keeps its DNAT to the endpoint it first got, so when that
// endpoint goes its packets go nowhere until the entry is deleted.
package conntrack

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/proxy/tracker"
)

// Flow is one UDP conntrack entry: its original direction and the source
// of its reply direction (the endpoint, after DNAT).
type Flow struct {
	OrigSrc, OrigDst     string
	OrigSport, OrigDport int
	ReplySrc             string
	ReplySport           int
}

// Interface lists and deletes the kernel's UDP IPv4 conntrack entries.
type Interface interface {
	ListUDP() ([]Flow, error)
	Delete(f Flow) error
}

// CLI is Interface through the conntrack command on PATH.
type CLI struct{}

// ListUDP runs conntrack -L -p udp -f ipv4.
func (CLI) ListUDP() ([]Flow, error) {
	cmd := exec.Command("conntrack", "-L", "-p", "udp", "-f", "ipv4")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("conntrack -L: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return parseFlows(stdout.Bytes()), nil
}

// Delete runs conntrack -D for exactly f; none deleted is no error.
func (CLI) Delete(f Flow) error {
	cmd := exec.Command("conntrack", "-D", "-p", "udp", "-f", "ipv4",
		"--orig-src", f.OrigSrc, "--orig-dst", f.OrigDst, "--sport", strconv.Itoa(f.OrigSport), "--dport", strconv.Itoa(f.OrigDport),
		"--reply-src", f.ReplySrc, "--reply-port-src", strconv.Itoa(f.ReplySport))
	out, err := cmd.CombinedOutput()
	if err != nil && !strings.Contains(string(out), "0 flow entries have been deleted") {
		return fmt.Errorf("conntrack -D: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// parseFlows reads conntrack -L lines ("udp 17 29 src=A dst=B sport=C
// dport=D [UNREPLIED] src=E dst=F sport=G dport=H ..."): the first
// src/dst/sport/dport are the original direction, the second the reply.
func parseFlows(out []byte) []Flow {
	var flows []Flow
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var f Flow
		seen := map[string]int{}
		for _, field := range strings.Fields(sc.Text()) {
			k, v, ok := strings.Cut(field, "=")
			if !ok {
				continue
			}
			seen[k]++
			n, _ := strconv.Atoi(v)
			switch {
			case k == "src" && seen[k] == 1:
				f.OrigSrc = v
			case k == "dst" && seen[k] == 1:
				f.OrigDst = v
			case k == "sport" && seen[k] == 1:
				f.OrigSport = n
			case k == "dport" && seen[k] == 1:
				f.OrigDport = n
			case k == "src" && seen[k] == 2:
				f.ReplySrc = v
			case k == "sport" && seen[k] == 2:
				f.ReplySport = n
			}
		}
		if f.OrigDst != "" && f.ReplySrc != "" {
			flows = append(flows, f)
		}
	}
	return flows
}

// CleanStaleEntries deletes the UDP entries to a service's IPs or node
// port whose endpoint is not one of the service's serving endpoints any
// more (or which were never DNATed, made while it had none).
func CleanStaleEntries(ct Interface, services tracker.ServicePortMap, endpoints tracker.EndpointsMap) (int, error) {
	byServiceIP := map[string]sets.Set[string]{}
	byNodePort := map[int]sets.Set[string]{}
	for name, svc := range services {
		if svc.Protocol != v1.ProtocolUDP {
			continue
		}
		serving := sets.New[string]()
		for _, e := range endpoints[name] {
			if e.Serving {
				serving.Insert(e.String())
			}
		}
		port := strconv.Itoa(svc.Port)
		byServiceIP[net.JoinHostPort(svc.ClusterIP.String(), port)] = serving
		for _, ip := range append(append([]net.IP{}, svc.LoadBalancerVIPs...), svc.ExternalIPs...) {
			byServiceIP[net.JoinHostPort(ip.String(), port)] = serving
		}
		if svc.NodePort != 0 && serving.Len() > 0 {
			byNodePort[svc.NodePort] = serving
		}
	}
	if len(byServiceIP) == 0 {
		return 0, nil
	}
	flows, err := ct.ListUDP()
	if err != nil {
		return 0, err
	}
	deleted := 0
	for _, f := range flows {
		reply := net.JoinHostPort(f.ReplySrc, strconv.Itoa(f.ReplySport))
		serving, ok := byServiceIP[net.JoinHostPort(f.OrigDst, strconv.Itoa(f.OrigDport))]
		if !ok {
			serving, ok = byNodePort[f.OrigDport]
		}
		if !ok || serving.Has(reply) {
			continue
		}
		if err := ct.Delete(f); err != nil {
			return deleted, err
		}
		deleted++
		klog.V(4).InfoS("Deleted a stale conntrack entry", "flow", f)
	}
	return deleted, nil
}
