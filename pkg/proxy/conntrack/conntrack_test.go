package conntrack

import (
	"net"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/pkg/proxy/tracker"
)

func TestParseFlows(t *testing.T) {
	out := []byte(`udp      17 27 src=10.77.0.1 dst=10.96.0.53 sport=40000 dport=53 src=10.77.0.11 dst=10.77.0.1 sport=5353 dport=40000 mark=0 use=1
udp      17 29 src=10.77.0.1 dst=10.96.0.54 sport=40001 dport=53 [UNREPLIED] src=10.96.0.54 dst=10.77.0.1 sport=53 dport=40001 mark=0 use=1
`)
	flows := parseFlows(out)
	want := []Flow{
		{OrigSrc: "10.77.0.1", OrigDst: "10.96.0.53", OrigSport: 40000, OrigDport: 53, ReplySrc: "10.77.0.11", ReplySport: 5353},
		{OrigSrc: "10.77.0.1", OrigDst: "10.96.0.54", OrigSport: 40001, OrigDport: 53, ReplySrc: "10.96.0.54", ReplySport: 53},
	}
	if len(flows) != 2 || flows[0] != want[0] || flows[1] != want[1] {
		t.Errorf("flows %+v, want %+v", flows, want)
	}
}

type fakeCT struct {
	flows   []Flow
	deleted []Flow
}

func (f *fakeCT) ListUDP() ([]Flow, error) { return f.flows, nil }
func (f *fakeCT) Delete(fl Flow) error     { f.deleted = append(f.deleted, fl); return nil }

func TestCleanStaleEntries(t *testing.T) {
	dns := tracker.ServicePortName{NamespacedName: types.NamespacedName{Namespace: "kube-system", Name: "dns"}, Port: "dns", Protocol: v1.ProtocolUDP}
	services := tracker.ServicePortMap{dns: {ClusterIP: net.ParseIP("10.96.0.53"), Port: 53, Protocol: v1.ProtocolUDP, NodePort: 30053}}
	endpoints := tracker.EndpointsMap{dns: {{IP: "10.77.0.12", Port: 5353, Ready: true, Serving: true}}}
	current := Flow{OrigSrc: "10.77.0.1", OrigDst: "10.96.0.53", OrigSport: 1, OrigDport: 53, ReplySrc: "10.77.0.12", ReplySport: 5353}
	stale := Flow{OrigSrc: "10.77.0.1", OrigDst: "10.96.0.53", OrigSport: 2, OrigDport: 53, ReplySrc: "10.77.0.11", ReplySport: 5353}
	neverNATed := Flow{OrigSrc: "10.77.0.1", OrigDst: "10.96.0.53", OrigSport: 3, OrigDport: 53, ReplySrc: "10.96.0.53", ReplySport: 53}
	staleNodePort := Flow{OrigSrc: "192.0.2.9", OrigDst: "10.77.0.1", OrigSport: 4, OrigDport: 30053, ReplySrc: "10.77.0.11", ReplySport: 5353}
	other := Flow{OrigSrc: "10.77.0.1", OrigDst: "192.0.2.1", OrigSport: 5, OrigDport: 53, ReplySrc: "192.0.2.1", ReplySport: 53}
	ct := &fakeCT{flows: []Flow{current, stale, neverNATed, staleNodePort, other}}
	n, err := CleanStaleEntries(ct, services, endpoints)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || len(ct.deleted) != 3 || ct.deleted[0] != stale || ct.deleted[1] != neverNATed || ct.deleted[2] != staleNodePort {
		t.Errorf("deleted %+v", ct.deleted)
	}
}
