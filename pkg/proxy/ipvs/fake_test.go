package ipvs

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
)

// fakeIPVS is an in-memory IPVS table that logs every call.
type fakeIPVS struct {
	servers map[string]*fakeServer
	calls   []string
	// failAdd makes AddVirtualServer fail for this key.
	failAdd string
}

type fakeServer struct {
	vs    VirtualServer
	dests map[string]*RealServer
}

func newFakeIPVS() *fakeIPVS { return &fakeIPVS{servers: map[string]*fakeServer{}} }

func (f *fakeIPVS) log(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeIPVS) VirtualServers() ([]*VirtualServer, error) {
	f.log("list")
	var out []*VirtualServer
	for _, s := range f.servers {
		vs := s.vs
		vs.Flags |= FlagHashed // as the kernel reports them
		out = append(out, &vs)
	}
	return out, nil
}

func (f *fakeIPVS) AddVirtualServer(vs *VirtualServer) error {
	f.log("add-vs %s", vs)
	if f.failAdd == vs.String() {
		return fmt.Errorf("injected failure")
	}
	if _, ok := f.servers[vs.String()]; ok {
		return fmt.Errorf("file exists")
	}
	f.servers[vs.String()] = &fakeServer{vs: *vs, dests: map[string]*RealServer{}}
	return nil
}

func (f *fakeIPVS) UpdateVirtualServer(vs *VirtualServer) error {
	f.log("update-vs %s", vs)
	s, ok := f.servers[vs.String()]
	if !ok {
		return fmt.Errorf("no such virtual server %s", vs)
	}
	s.vs = *vs
	return nil
}

func (f *fakeIPVS) DeleteVirtualServer(vs *VirtualServer) error {
	f.log("delete-vs %s", vs)
	if _, ok := f.servers[vs.String()]; !ok {
		return fmt.Errorf("no such virtual server %s", vs)
	}
	delete(f.servers, vs.String())
	return nil
}

func (f *fakeIPVS) server(vs *VirtualServer) (*fakeServer, error) {
	s, ok := f.servers[vs.String()]
	if !ok {
		return nil, fmt.Errorf("no such virtual server %s", vs)
	}
	return s, nil
}

func (f *fakeIPVS) RealServers(vs *VirtualServer) ([]*RealServer, error) {
	f.log("list-rs %s", vs)
	s, err := f.server(vs)
	if err != nil {
		return nil, err
	}
	var out []*RealServer
	for _, rs := range s.dests {
		c := *rs
		out = append(out, &c)
	}
	return out, nil
}

func (f *fakeIPVS) AddRealServer(vs *VirtualServer, rs *RealServer) error {
	f.log("add-rs %s %s", vs, rs)
	s, err := f.server(vs)
	if err != nil {
		return err
	}
	if _, ok := s.dests[rs.String()]; ok {
		return fmt.Errorf("file exists")
	}
	c := *rs
	s.dests[rs.String()] = &c
	return nil
}

func (f *fakeIPVS) UpdateRealServer(vs *VirtualServer, rs *RealServer) error {
	f.log("update-rs %s %s weight %d", vs, rs, rs.Weight)
	s, err := f.server(vs)
	if err != nil {
		return err
	}
	cur, ok := s.dests[rs.String()]
	if !ok {
		return fmt.Errorf("no such real server %s", rs)
	}
	cur.Weight = rs.Weight
	return nil
}

func (f *fakeIPVS) DeleteRealServer(vs *VirtualServer, rs *RealServer) error {
	f.log("delete-rs %s %s", vs, rs)
	s, err := f.server(vs)
	if err != nil {
		return err
	}
	if _, ok := s.dests[rs.String()]; !ok {
		return fmt.Errorf("no such real server %s", rs)
	}
	delete(s.dests, rs.String())
	return nil
}

func (f *fakeIPVS) ConfigureTimeouts(tcp, tcpFin, udp time.Duration) error { return nil }

// keys lists the virtual servers.
func (f *fakeIPVS) keys() []string {
	var out []string
	for k := range f.servers {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// dests lists a virtual server's real servers as "ip:port w".
func (f *fakeIPVS) dests(key string) []string {
	s, ok := f.servers[key]
	if !ok {
		return nil
	}
	var out []string
	for k, rs := range s.dests {
		out = append(out, fmt.Sprintf("%s w%d", k, rs.Weight))
	}
	sort.Strings(out)
	return out
}

// takeCalls returns the calls since the last take.
func (f *fakeIPVS) takeCalls() []string {
	c := f.calls
	f.calls = nil
	return c
}

// fakeIPSet is in-memory ipsets.
type fakeIPSet struct {
	sets    map[string]sets.Set[string]
	types   map[string]string
	lists   int
	batches int
}

func newFakeIPSet() *fakeIPSet {
	return &fakeIPSet{sets: map[string]sets.Set[string]{}, types: map[string]string{}}
}

func (f *fakeIPSet) EnsureSets(specs []SetSpec) error {
	for _, s := range specs {
		if _, err := createLine(s); err != nil {
			return err
		}
		if _, ok := f.sets[s.Name]; !ok {
			f.sets[s.Name] = sets.New[string]()
			f.types[s.Name] = s.Type
		}
	}
	return nil
}

func (f *fakeIPSet) ListEntries(set string) ([]string, error) {
	f.lists++
	s, ok := f.sets[set]
	if !ok {
		return nil, fmt.Errorf("the set with the given name does not exist")
	}
	return sets.List(s), nil
}

func (f *fakeIPSet) Apply(changes []SetChange) error {
	f.batches++
	for _, c := range changes {
		s, ok := f.sets[c.Set]
		if !ok {
			return fmt.Errorf("the set %s does not exist", c.Set)
		}
		if c.Delete {
			s.Delete(c.Entry)
		} else {
			s.Insert(c.Entry)
		}
	}
	return nil
}

func (f *fakeIPSet) DestroySet(set string) error {
	delete(f.sets, set)
	return nil
}

func (f *fakeIPSet) entries(set string) []string { return sets.List(f.sets[set]) }

// fakeDummy is an in-memory kube-ipvs0 and node addresses.
type fakeDummy struct {
	exists    bool
	addrs     sets.Set[string]
	nodeAddrs []net.IP
	adds      []string
	lists     int
}

func newFakeDummy(nodeAddrs ...string) *fakeDummy {
	d := &fakeDummy{addrs: sets.New[string]()}
	for _, a := range nodeAddrs {
		d.nodeAddrs = append(d.nodeAddrs, net.ParseIP(a))
	}
	return d
}

func (f *fakeDummy) EnsureDevice(dev string) error {
	if dev != DummyDevice {
		return fmt.Errorf("unexpected device %s", dev)
	}
	f.exists = true
	return nil
}

func (f *fakeDummy) DeleteDevice(dev string) error {
	f.exists = false
	f.addrs = sets.New[string]()
	return nil
}

func (f *fakeDummy) Addresses(dev string) ([]net.IP, error) {
	f.lists++
	if !f.exists {
		return nil, fmt.Errorf("Link not found")
	}
	var out []net.IP
	for _, a := range sets.List(f.addrs) {
		out = append(out, net.ParseIP(a))
	}
	return out, nil
}

func (f *fakeDummy) AddAddress(dev string, ip net.IP) error {
	f.adds = append(f.adds, ip.String())
	f.addrs.Insert(ip.String())
	return nil
}

func (f *fakeDummy) DeleteAddress(dev string, ip net.IP) error {
	f.addrs.Delete(ip.String())
	return nil
}

func (f *fakeDummy) NodeAddresses(exceptDev string) ([]net.IP, error) {
	return append([]net.IP{net.ParseIP("127.0.0.1")}, f.nodeAddrs...), nil
}

// fakeIPT records the iptables calls.
type fakeIPT struct {
	jumps    []string
	restores []string
	fail     error
}

func (f *fakeIPT) EnsureChain(table, chain string) error { return nil }
func (f *fakeIPT) EnsureRuleFirst(table, chain string, rule ...string) error {
	f.jumps = append(f.jumps, table+" "+chain+" "+strings.Join(rule, " "))
	return nil
}
func (f *fakeIPT) DeleteRule(table, chain string, rule ...string) error { return nil }
func (f *fakeIPT) ChainExists(table, chain string) (bool, error)        { return true, nil }
func (f *fakeIPT) DeleteChain(table, chain string) error                { return nil }
func (f *fakeIPT) ListChains(table string) ([]string, error)            { return nil, nil }
func (f *fakeIPT) Restore(data []byte) error {
	if f.fail != nil {
		return f.fail
	}
	f.restores = append(f.restores, string(data))
	return nil
}
