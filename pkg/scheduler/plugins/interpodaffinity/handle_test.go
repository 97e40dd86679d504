package interpodaffinity

import (
	v1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
)

// newFakeHandle: a test Handle over nodes whose namespace lister holds
// nss (put straight into the informer's indexer).
func newFakeHandle(nodes []*framework.NodeInfo, nss ...*v1.Namespace) *testhandle.Handle {
	h := testhandle.New(nodes)
	for _, ns := range nss {
		if err := h.Informers.Core().V1().Namespaces().Informer().GetIndexer().Add(ns); err != nil {
			panic(err)
		}
	}
	return h
}
