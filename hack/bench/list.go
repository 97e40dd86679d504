package main

import (
	"bytes"
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
)

const pageSize = 500

// listResult is what one timed list saw.
type listResult struct {
	items int
	took  time.Duration // the timed part
	size  int           // response bytes, raw list only
	proto bool          // the response was protobuf, raw list only
}

// listing is one way to list every pod of a namespace.
type listing struct {
	name string
	list func(context.Context) (listResult, error)
}

// timed times all of count, which returns how many pods it listed.
func timed(count func(context.Context) (int, error)) func(context.Context) (listResult, error) {
	return func(ctx context.Context) (listResult, error) {
		t0 := time.Now()
		n, err := count(ctx)
		return listResult{items: n, took: time.Since(t0)}, err
	}
}

// listWorkload creates cfg.pods pods in a fresh namespace and times listing
// them in full, paged and as metadata only.
func listWorkload(cfg *config) workload {
	return workload{key: "list", name: fmt.Sprintf("list %d pods", cfg.pods), run: func(ctx context.Context, t *target, rec recorder) error {
		clients, err := t.clients(cfg.maxClients())
		if err != nil {
			return err
		}
		ns, err := newNamespace(ctx, t.admin(), "list", true)
		if err != nil {
			return err
		}
		b := budget{ops: cfg.pods}
		created := runClients(ctx, len(clients), b, func(ctx context.Context, c, i int) (bool, error) {
			_, err := clients[c].CoreV1().Pods(ns).Create(ctx, newPod(fmt.Sprintf("pod-%d-%d", c, i)), metav1.CreateOptions{})
			return false, err
		})
		logf("%s: create %d pods with %d clients: %s", t.name, cfg.pods, len(clients), created)
		rec.stats(fmt.Sprintf("create (%d clients)", len(clients)), b, created)
		want := created.Ops

		meta, err := metadata.NewForConfig(t.cfg)
		if err != nil {
			return err
		}
		pods := clients[0].CoreV1().Pods(ns)
		listings := []listing{
			{"full list", timed(func(ctx context.Context) (int, error) {
				l, err := pods.List(ctx, metav1.ListOptions{})
				if err != nil {
					return 0, err
				}
				return len(l.Items), nil
			})},
			{"full list, raw bytes (not decoded)", func(ctx context.Context) (listResult, error) {
				return rawList(ctx, clients[0], ns)
			}},
			{fmt.Sprintf("paged list (limit=%d)", pageSize), timed(func(ctx context.Context) (int, error) {
				n, cont := 0, ""
				for {
					l, err := pods.List(ctx, metav1.ListOptions{Limit: pageSize, Continue: cont})
					if err != nil {
						return n, err
					}
					n += len(l.Items)
					if cont = l.Continue; cont == "" {
						return n, nil
					}
				}
			})},
			{"metadata-only list", timed(func(ctx context.Context) (int, error) {
				l, err := meta.Resource(corev1.SchemeGroupVersion.WithResource("pods")).Namespace(ns).List(ctx, metav1.ListOptions{})
				if err != nil {
					return 0, err
				}
				return len(l.Items), nil
			})},
		}
		times := make([][]float64, len(listings))
		for rep := range cfg.reps {
			for k, l := range listings {
				r, err := l.list(ctx)
				if err != nil {
					return fmt.Errorf("%s: %w", l.name, err)
				}
				if r.items != want {
					return fmt.Errorf("%s returned %d pods, want %d", l.name, r.items, want)
				}
				if r.size > 0 && rep == 0 {
					rec.set("full list response size", "MiB", float64(r.size)/(1<<20))
					if !r.proto {
						rec.res.note("%s answered the pod list with JSON, not protobuf", t.name)
					}
				}
				times[k] = append(times[k], ms(r.took))
			}
		}
		for k, l := range listings {
			m := median(times[k])
			rec.set(l.name+", median", "ms", m)
			logf("%s: %s of %d pods: median %.0f ms (all: %.0f)", t.name, l.name, want, m, times[k])
		}
		return nil
	}}
}

// protobufMagic starts every Kubernetes protobuf response.
var protobufMagic = []byte("k8s\x00")

// rawList lists the namespace's pods as the typed client does (protobuf
// preferred), but times only reading the response: the server and the
// transfer, not client-side decoding. It then decodes, untimed, to count.
func rawList(ctx context.Context, cs kubernetes.Interface, ns string) (listResult, error) {
	t0 := time.Now()
	data, err := cs.CoreV1().RESTClient().Get().Namespace(ns).Resource("pods").
		SetHeader("Accept", "application/vnd.kubernetes.protobuf,application/json").DoRaw(ctx)
	r := listResult{took: time.Since(t0), size: len(data), proto: bytes.HasPrefix(data, protobufMagic)}
	if err != nil {
		return r, err
	}
	var l corev1.PodList
	if _, _, err := scheme.Codecs.UniversalDeserializer().Decode(data, nil, &l); err != nil {
		return r, err
	}
	r.items = len(l.Items)
	return r, nil
}
