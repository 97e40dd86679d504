package main

import (
	"context"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
)

// listObjects is the size of the namespace the CRUD "list" measurement lists.
const listObjects = 100

type object interface {
	runtime.Object
	metav1.Object
}

// typedClient is what the CRUD workload needs of a typed client-go client
// (ConfigMapInterface, PodInterface, ...).
type typedClient[T object, L runtime.Object] interface {
	Create(context.Context, T, metav1.CreateOptions) (T, error)
	Get(context.Context, string, metav1.GetOptions) (T, error)
	List(context.Context, metav1.ListOptions) (L, error)
	Update(context.Context, T, metav1.UpdateOptions) (T, error)
	Delete(context.Context, string, metav1.DeleteOptions) error
}

// resource describes a kind for the CRUD workload.
type resource[T object, L runtime.Object] struct {
	name           string // plural, also the workload's name
	client         func(cs kubernetes.Interface, ns string) typedClient[T, L]
	build          func(name string) T
	deleteOptions  metav1.DeleteOptions
	serviceAccount bool // the namespace needs ServiceAccount "default"
}

var configMaps = resource[*corev1.ConfigMap, *corev1.ConfigMapList]{
	name: "configmaps",
	client: func(cs kubernetes.Interface, ns string) typedClient[*corev1.ConfigMap, *corev1.ConfigMapList] {
		return cs.CoreV1().ConfigMaps(ns)
	},
	build: func(name string) *corev1.ConfigMap {
		return &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "bench"}},
			Data:       map[string]string{"key": "value", "config.yaml": "replicas: 3\nimage: example.com/app:v1\n"},
		}
	},
}

var zero int64

var pods = resource[*corev1.Pod, *corev1.PodList]{
	name: "pods",
	client: func(cs kubernetes.Interface, ns string) typedClient[*corev1.Pod, *corev1.PodList] {
		return cs.CoreV1().Pods(ns)
	},
	build:          newPod,
	deleteOptions:  metav1.DeleteOptions{GracePeriodSeconds: &zero},
	serviceAccount: true,
}

// newPod is a minimal valid pod. Without a token volume it is the same on
// both servers (upstream's ServiceAccount admission would add one).
func newPod(name string) *corev1.Pod {
	automount := false
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "bench"}},
		Spec: corev1.PodSpec{
			Containers:                   []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}},
			AutomountServiceAccountToken: &automount,
		},
	}
}

// crudWorkload measures create, get, list, update and delete of r's kind
// with each client count.
func crudWorkload[T object, L runtime.Object](cfg *config, r resource[T, L]) workload {
	return workload{key: r.name, name: r.name, run: func(ctx context.Context, t *target, rec recorder) error {
		clients, err := t.clients(cfg.maxClients())
		if err != nil {
			return err
		}
		// The namespace "list" lists; filling it also warms the server up.
		listNS, err := newNamespace(ctx, t.admin(), r.name+"-list", r.serviceAccount)
		if err != nil {
			return err
		}
		fill := runClients(ctx, min(16, len(clients)), budget{ops: listObjects}, func(ctx context.Context, c, i int) (bool, error) {
			_, err := r.client(clients[c], listNS).Create(ctx, r.build(fmt.Sprintf("list-%d-%d", c, i)), metav1.CreateOptions{})
			return false, err
		})
		if fill.Errors > 0 {
			return fmt.Errorf("filling the list namespace: %d errors, e.g. %s", fill.Errors, fill.ErrorSamples[0])
		}
		for _, n := range cfg.clients {
			if err := crudRound(ctx, cfg, r, t, rec, clients[:n], listNS); err != nil {
				return err
			}
		}
		return nil
	}}
}

// crudRound runs the five measurements with len(clients) clients in a fresh
// namespace.
func crudRound[T object, L runtime.Object](ctx context.Context, cfg *config, r resource[T, L], t *target, rec recorder, clients []kubernetes.Interface, listNS string) error {
	n := len(clients)
	ns, err := newNamespace(ctx, t.admin(), r.name, r.serviceAccount)
	if err != nil {
		return err
	}
	rec.workload = fmt.Sprintf("%s, %d clients", r.name, n)
	if n == 1 {
		rec.workload = r.name + ", 1 client"
	}
	b := cfg.budget()
	// Each client works on the objects it created, so updates never conflict.
	owned := make([][]T, n)
	api := make([]typedClient[T, L], n)
	listAPI := make([]typedClient[T, L], n)
	for c, cs := range clients {
		api[c], listAPI[c] = r.client(cs, ns), r.client(cs, listNS)
	}
	pick := func(c, i int) (T, bool) {
		var none T
		if len(owned[c]) == 0 {
			return none, false
		}
		return owned[c][i%len(owned[c])], true
	}
	measure := func(what string, op clientOp) opStats {
		s := runClients(ctx, n, b, op)
		logf("%s: %s: %s: %s", t.name, rec.workload, what, s)
		rec.stats(what, b, s)
		return s
	}

	created := measure("create", func(ctx context.Context, c, i int) (bool, error) {
		obj, err := api[c].Create(ctx, r.build(fmt.Sprintf("obj-%d-%d", c, i)), metav1.CreateOptions{})
		if err == nil {
			owned[c] = append(owned[c], obj)
		}
		return false, err
	})
	if created.Ops == 0 {
		return fmt.Errorf("%s: no object created", rec.workload)
	}
	measure("get", func(ctx context.Context, c, i int) (bool, error) {
		obj, ok := pick(c, i)
		if !ok {
			return true, nil
		}
		_, err := api[c].Get(ctx, obj.GetName(), metav1.GetOptions{})
		return false, err
	})
	measure("list", func(ctx context.Context, c, i int) (bool, error) {
		list, err := listAPI[c].List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		// Count only ours: a server may add objects of its own to every
		// namespace (skiff's root CA publisher: ConfigMap kube-root-ca.crt).
		items, err := meta.ExtractList(list)
		if err != nil {
			return false, err
		}
		got := 0
		for _, item := range items {
			if o, ok := item.(metav1.Object); ok && o.GetLabels()["app"] == "bench" {
				got++
			}
		}
		if got != listObjects {
			return false, fmt.Errorf("list returned %d of the %d objects, %d items in all", got, listObjects, len(items))
		}
		return false, nil
	})
	measure("update", func(ctx context.Context, c, i int) (bool, error) {
		obj, ok := pick(c, i)
		if !ok {
			return true, nil
		}
		annotations := obj.GetAnnotations()
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations["bench/update"] = strconv.Itoa(i)
		obj.SetAnnotations(annotations)
		updated, err := api[c].Update(ctx, obj, metav1.UpdateOptions{})
		if err == nil {
			owned[c][i%len(owned[c])] = updated
		}
		return false, err
	})
	measure("delete", func(ctx context.Context, c, i int) (bool, error) {
		if i >= len(owned[c]) {
			return true, nil // all of this client's objects are gone
		}
		return false, api[c].Delete(ctx, owned[c][i].GetName(), r.deleteOptions)
	})
	return nil
}
