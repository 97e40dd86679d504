package cache

import (
	"fmt"
	"sort"

	v1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// Snapshot is the NodeInfos one scheduling cycle reads, without locks:
// the cache's state at UpdateSnapshot. It is a framework.SharedLister.
type Snapshot struct {
	byName map[string]*framework.NodeInfo
	// list: the nodes, zones interleaved (upstream's node tree), so a
	// search that stops early still sees every zone.
	list         []*framework.NodeInfo
	withAffinity []*framework.NodeInfo
	withAnti     []*framework.NodeInfo
	generation   int64
}

// NewEmptySnapshot is a snapshot of nothing.
func NewEmptySnapshot() *Snapshot {
	return &Snapshot{byName: map[string]*framework.NodeInfo{}}
}

// NewSnapshot builds a snapshot from pods and nodes directly (tests,
// preemption dry runs).
func NewSnapshot(pods []*v1.Pod, nodes []*v1.Node) *Snapshot {
	c := New(0, nil)
	for _, n := range nodes {
		c.setNode(n)
	}
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			c.mu.Lock()
			c.addPodLocked(p)
			c.mu.Unlock()
		}
	}
	s := NewEmptySnapshot()
	c.UpdateSnapshot(s)
	return s
}

// NodeInfos implements framework.SharedLister.
func (s *Snapshot) NodeInfos() framework.NodeInfoLister { return s }

// List is every node.
func (s *Snapshot) List() ([]*framework.NodeInfo, error) { return s.list, nil }

// HavePodsWithAffinityList: nodes with a pod with pod (anti-)affinity.
func (s *Snapshot) HavePodsWithAffinityList() ([]*framework.NodeInfo, error) {
	return s.withAffinity, nil
}

// HavePodsWithRequiredAntiAffinityList: nodes with a pod with required
// anti-affinity.
func (s *Snapshot) HavePodsWithRequiredAntiAffinityList() ([]*framework.NodeInfo, error) {
	return s.withAnti, nil
}

// Get is one node's NodeInfo.
func (s *Snapshot) Get(name string) (*framework.NodeInfo, error) {
	if n, ok := s.byName[name]; ok && n.Node() != nil {
		return n, nil
	}
	return nil, fmt.Errorf("nodeinfo not found for node name %q", name)
}

// NumNodes is the number of nodes.
func (s *Snapshot) NumNodes() int { return len(s.list) }

// Generation is the newest NodeInfo generation the snapshot holds.
func (s *Snapshot) Generation() int64 { return s.generation }

// UpdateSnapshot brings s up to date, cloning only the NodeInfos whose
// generation is newer than s's.
func (c *Cache) UpdateSnapshot(s *Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rebuildAll := c.nodesChanged
	rebuildAffinity := false
	newest := s.generation
	for it := c.head; it != nil && it.info.Generation > s.generation; it = it.next {
		newest = max(newest, it.info.Generation)
		node := it.info.Node()
		if node == nil {
			continue
		}
		clone := it.info.Clone()
		c.refreshImages(clone)
		old, ok := s.byName[node.Name]
		if !ok {
			rebuildAll = true
			s.byName[node.Name] = clone
			continue
		}
		if (len(old.PodsWithAffinity) > 0) != (len(clone.PodsWithAffinity) > 0) ||
			(len(old.PodsWithRequiredAntiAffinity) > 0) != (len(clone.PodsWithRequiredAntiAffinity) > 0) {
			rebuildAffinity = true
		}
		// In place: the lists hold the same pointer.
		*old = *clone
	}
	s.generation = newest
	// Drop the nodes the cache no longer has.
	if len(s.byName) != c.nodeCountLocked() {
		for name := range s.byName {
			if it, ok := c.nodes[name]; !ok || it.info.Node() == nil {
				delete(s.byName, name)
			}
		}
		rebuildAll = true
	}
	if c.imagesChanged {
		for _, ni := range s.byName {
			c.refreshImages(ni)
		}
		c.imagesChanged = false
	}
	if rebuildAll {
		s.list = interleaveZones(s.byName)
		c.nodesChanged = false
	}
	if rebuildAll || rebuildAffinity {
		s.withAffinity, s.withAnti = nil, nil
		for _, n := range s.list {
			if len(n.PodsWithAffinity) > 0 {
				s.withAffinity = append(s.withAffinity, n)
			}
			if len(n.PodsWithRequiredAntiAffinity) > 0 {
				s.withAnti = append(s.withAnti, n)
			}
		}
	}
}

// refreshImages sets how many nodes hold each of a snapshot NodeInfo's
// images (it changes as other nodes come and go).
func (c *Cache) refreshImages(ni *framework.NodeInfo) {
	for name, sum := range ni.ImageStates {
		if st, ok := c.images[name]; ok {
			sum.NumNodes = st.nodes.Len()
		}
	}
}

func (c *Cache) nodeCountLocked() int {
	n := 0
	for _, it := range c.nodes {
		if it.info.Node() != nil {
			n++
		}
	}
	return n
}

// interleaveZones orders nodes as upstream's node tree: zones (region
// and zone labels) by name, taking one node of each in turn.
func interleaveZones(byName map[string]*framework.NodeInfo) []*framework.NodeInfo {
	zones := map[string][]*framework.NodeInfo{}
	for _, n := range byName {
		z := zoneOf(n.Node())
		zones[z] = append(zones[z], n)
	}
	names := make([]string, 0, len(zones))
	for z, ns := range zones {
		names = append(names, z)
		sort.Slice(ns, func(i, j int) bool { return ns[i].Node().Name < ns[j].Node().Name })
	}
	sort.Strings(names)
	out := make([]*framework.NodeInfo, 0, len(byName))
	for i := 0; len(out) < len(byName); i++ {
		for _, z := range names {
			if i < len(zones[z]) {
				out = append(out, zones[z][i])
			}
		}
	}
	return out
}

func zoneOf(n *v1.Node) string {
	region, zone := n.Labels[v1.LabelTopologyRegion], n.Labels[v1.LabelTopologyZone]
	if region == "" && zone == "" {
		return ""
	}
	return region + ":\x00:" + zone
}
