package store

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/skiff-dev/skiff/pkg/apis/selectable"
)

var deployments = Resource{
	Resource: schema.GroupResource{Group: "apps", Resource: "deployments"}, Singular: "deployment",
	Namespaced: true, HasStatus: true, Generation: GenerationOnSpec,
	New:     func() runtime.Object { return &appsv1.Deployment{} },
	NewList: func() runtime.Object { return &appsv1.DeploymentList{} },
}

var configmaps = Resource{
	Resource: schema.GroupResource{Resource: "configmaps"}, Singular: "configmap", Namespaced: true,
	New:     func() runtime.Object { return &corev1.ConfigMap{} },
	NewList: func() runtime.Object { return &corev1.ConfigMapList{} },
}

func deployment(replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns", Generation: 7, Labels: map[string]string{"a": "b"}},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
		Status:     appsv1.DeploymentStatus{Replicas: 3, ObservedGeneration: 6},
	}
}

func TestPrepareForCreate(t *testing.T) {
	ctx := context.Background()
	d := deployment(2)
	newStrategy(deployments).PrepareForCreate(ctx, d)
	if d.Generation != 1 {
		t.Errorf("generation %d, want 1", d.Generation)
	}
	if d.Status.Replicas != 0 || d.Status.ObservedGeneration != 0 {
		t.Errorf("status not reset: %+v", d.Status)
	}
	if *d.Spec.Replicas != 2 || d.Labels["a"] != "b" {
		t.Errorf("create changed spec or labels: %+v", d)
	}

	// Without a status subresource the status is the client's.
	noStatus := deployments
	noStatus.HasStatus = false
	d = deployment(2)
	newStrategy(noStatus).PrepareForCreate(ctx, d)
	if d.Status.Replicas != 3 || d.Generation != 1 {
		t.Errorf("HasStatus=false: status %+v generation %d", d.Status, d.Generation)
	}

	// KeepStatusOnCreate (nodes) keeps the status the create sends.
	keep := deployments
	keep.KeepStatusOnCreate = true
	d = deployment(2)
	newStrategy(keep).PrepareForCreate(ctx, d)
	if d.Status.Replicas != 3 {
		t.Errorf("KeepStatusOnCreate: status %+v", d.Status)
	}

	// NoGeneration leaves it alone; GenerationOnContent starts at 1 too.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Generation: 5}}
	newStrategy(configmaps).PrepareForCreate(ctx, cm)
	if cm.Generation != 5 {
		t.Errorf("NoGeneration: generation changed to %d", cm.Generation)
	}
	content := configmaps
	content.Generation = GenerationOnContent
	cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Generation: 5}}
	newStrategy(content).PrepareForCreate(ctx, cm)
	if cm.Generation != 1 {
		t.Errorf("GenerationOnContent: generation %d on create, want 1", cm.Generation)
	}

	// The resource's hook runs after the common part.
	hooked := deployments
	hooked.PrepareForCreate = func(obj runtime.Object) { obj.(*appsv1.Deployment).Status.Replicas = 42 }
	d = deployment(2)
	newStrategy(hooked).PrepareForCreate(ctx, d)
	if d.Status.Replicas != 42 {
		t.Errorf("hook result %d, want 42 (hook must run after the status reset)", d.Status.Replicas)
	}
}

func TestPrepareForUpdate(t *testing.T) {
	ctx := context.Background()
	s := newStrategy(deployments)
	for _, tc := range []struct {
		name           string
		change         func(d *appsv1.Deployment)
		wantGeneration int64
	}{
		{"spec change", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](5) }, 8},
		{"label change", func(d *appsv1.Deployment) { d.Labels["x"] = "y" }, 7},
		{"status change", func(d *appsv1.Deployment) { d.Status.Replicas = 99 }, 7},
		{"no change", func(d *appsv1.Deployment) {}, 7},
		// Semantic equality: an explicit empty value equals a missing one.
		{"nil vs empty template labels", func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{} }, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := deployment(2)
			updated := old.DeepCopy()
			tc.change(updated)
			s.PrepareForUpdate(ctx, updated, old)
			if updated.Generation != tc.wantGeneration {
				t.Errorf("generation %d, want %d", updated.Generation, tc.wantGeneration)
			}
			if !apiequality.Semantic.DeepEqual(updated.Status, old.Status) {
				t.Errorf("main-resource update changed the status to %+v", updated.Status)
			}
		})
	}
}

func TestGenerationPolicies(t *testing.T) {
	ctx := context.Background()
	base := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Generation: 3, Labels: map[string]string{"a": "b"}}, Data: map[string]string{"k": "v"}}
	for _, tc := range []struct {
		name   string
		policy Generation
		change func(cm *corev1.ConfigMap)
		want   int64
	}{
		{"none: data change", NoGeneration, func(cm *corev1.ConfigMap) { cm.Data["k"] = "w" }, 3},
		{"content: data change", GenerationOnContent, func(cm *corev1.ConfigMap) { cm.Data["k"] = "w" }, 4},
		{"content: binaryData change", GenerationOnContent, func(cm *corev1.ConfigMap) { cm.BinaryData = map[string][]byte{"b": {1}} }, 4},
		{"content: label change", GenerationOnContent, func(cm *corev1.ConfigMap) { cm.Labels["a"] = "c" }, 3},
		{"content: no change", GenerationOnContent, func(cm *corev1.ConfigMap) {}, 3},
		// A kind without a spec never changes its spec.
		{"spec: data change", GenerationOnSpec, func(cm *corev1.ConfigMap) { cm.Data["k"] = "w" }, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := configmaps
			res.Generation = tc.policy
			old := base.DeepCopy()
			updated := old.DeepCopy()
			tc.change(updated)
			newStrategy(res).PrepareForUpdate(ctx, updated, old)
			if updated.Generation != tc.want {
				t.Errorf("generation %d, want %d", updated.Generation, tc.want)
			}
		})
	}

	// Content excludes the status: a status-only change of a kind with
	// GenerationOnContent does not count.
	res := deployments
	res.Generation = GenerationOnContent
	old := deployment(2)
	updated := old.DeepCopy()
	updated.Status.Replicas = 10
	newStrategy(res).PrepareForUpdate(ctx, updated, old)
	if updated.Generation != 7 {
		t.Errorf("status change under GenerationOnContent: generation %d, want 7", updated.Generation)
	}
}

func TestStatusSubresourceStrategy(t *testing.T) {
	ctx := context.Background()
	sub := &subresourceStrategy{strategy: newStrategy(deployments), keep: keepOnlyStatus, resets: "spec"}
	old := deployment(2)
	old.Annotations = map[string]string{"k": "v"}
	updated := old.DeepCopy()
	updated.Spec.Replicas = ptr.To[int32](9)
	updated.Status.Replicas = 4
	updated.Labels["new"] = "label"
	updated.Annotations["k"] = "changed"
	updated.Generation = 50
	sub.PrepareForUpdate(ctx, updated, old)
	if updated.Status.Replicas != 4 {
		t.Errorf("status update lost the status: %+v", updated.Status)
	}
	if *updated.Spec.Replicas != 2 {
		t.Errorf("status update changed spec.replicas to %d", *updated.Spec.Replicas)
	}
	// As upstream for most kinds, a status writer may change labels and
	// annotations (the generic BeforeUpdate guards generation and the rest).
	if updated.Labels["new"] != "label" || updated.Annotations["k"] != "changed" {
		t.Errorf("status update dropped metadata changes: labels %v annotations %v", updated.Labels, updated.Annotations)
	}

	reset := sub.GetResetFields()
	set, ok := reset[fieldpath.APIVersion("apps/v1")]
	if !ok || !set.Has(fieldpath.MakePathOrDie("spec")) || set.Has(fieldpath.MakePathOrDie("status")) {
		t.Errorf("status reset fields %v, want apps/v1: spec", reset)
	}
	main := newStrategy(deployments).GetResetFields()
	if set, ok := main["apps/v1"]; !ok || !set.Has(fieldpath.MakePathOrDie("status")) {
		t.Errorf("main reset fields %v, want apps/v1: status", main)
	}
	if len(main) != 1 {
		t.Errorf("reset fields name %d versions, want only apps/v1 (no internal version): %v", len(main), main)
	}
	if newStrategy(configmaps).GetResetFields() != nil {
		t.Error("a resource without status has reset fields")
	}

	// Like upstream's status strategies, which embed the main strategy, a
	// subresource creates on update exactly when the main resource does
	// (deployments: never, so PUT .../status of a missing one is 404).
	for _, allow := range []bool{false, true} {
		res := deployments
		res.AllowCreateOnUpdate = allow
		sub := &subresourceStrategy{strategy: newStrategy(res), keep: keepOnlyStatus, resets: "spec"}
		if got := sub.AllowCreateOnUpdate(ctx); got != allow {
			t.Errorf("main AllowCreateOnUpdate %v: subresource says %v", allow, got)
		}
	}
}

func TestValidate(t *testing.T) {
	ctx := context.Background()
	s := newStrategy(configmaps)
	for _, tc := range []struct {
		name      string
		meta      metav1.ObjectMeta
		wantField string // "" for valid
	}{
		{"valid", metav1.ObjectMeta{Name: "a.b-c", Namespace: "ns"}, ""},
		{"uppercase name", metav1.ObjectMeta{Name: "Abc", Namespace: "ns"}, "metadata.name"},
		{"missing name", metav1.ObjectMeta{Namespace: "ns"}, "metadata.name"},
		{"missing namespace", metav1.ObjectMeta{Name: "a"}, "metadata.namespace"},
		{"bad label", metav1.ObjectMeta{Name: "a", Namespace: "ns", Labels: map[string]string{"k": "v v"}}, "metadata.labels"},
		{"bad annotation key", metav1.ObjectMeta{Name: "a", Namespace: "ns", Annotations: map[string]string{"/": "v"}}, "metadata.annotations"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := s.Validate(ctx, &corev1.ConfigMap{ObjectMeta: tc.meta})
			if tc.wantField == "" {
				if len(errs) != 0 {
					t.Errorf("unexpected errors %v", errs)
				}
				return
			}
			if !hasErrorOn(errs, tc.wantField) {
				t.Errorf("errors %v, want one on %s", errs, tc.wantField)
			}
		})
	}

	// A cluster-scoped resource refuses a namespace.
	cluster := configmaps
	cluster.Namespaced = false
	if errs := newStrategy(cluster).Validate(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns"}}); !hasErrorOn(errs, "metadata.namespace") {
		t.Errorf("cluster-scoped object with a namespace: %v", errs)
	}

	// ValidateName and Validate hooks.
	custom := configmaps
	custom.ValidateName = func(name string, prefix bool) []string {
		if strings.Contains(name, ".") {
			return []string{"no dots"}
		}
		return nil
	}
	custom.Validate = func(obj runtime.Object) field.ErrorList {
		if obj.(*corev1.ConfigMap).Data["bad"] != "" {
			return field.ErrorList{field.Invalid(field.NewPath("data", "bad"), "x", "bad")}
		}
		return nil
	}
	cs := newStrategy(custom)
	if errs := cs.Validate(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a.b", Namespace: "ns"}}); !hasErrorOn(errs, "metadata.name") {
		t.Errorf("custom name validation not applied: %v", errs)
	}
	if errs := cs.Validate(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ab", Namespace: "ns"}, Data: map[string]string{"bad": "1"}}); !hasErrorOn(errs, "data.bad") {
		t.Errorf("Validate hook not applied: %v", errs)
	}
}

func TestValidateUpdate(t *testing.T) {
	ctx := context.Background()
	old := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns", UID: "u1", ResourceVersion: "1"}}

	renamed := old.DeepCopy()
	renamed.Name = "b"
	if errs := newStrategy(configmaps).ValidateUpdate(ctx, renamed, old); !hasErrorOn(errs, "metadata.name") {
		t.Errorf("renaming allowed: %v", errs)
	}
	newUID := old.DeepCopy()
	newUID.UID = "u2"
	if errs := newStrategy(configmaps).ValidateUpdate(ctx, newUID, old); !hasErrorOn(errs, "metadata.uid") {
		t.Errorf("changing the uid allowed: %v", errs)
	}

	// ValidateUpdate replaces Validate on updates when set.
	calls := ""
	hooked := configmaps
	hooked.Validate = func(runtime.Object) field.ErrorList { calls += "v"; return nil }
	if errs := newStrategy(hooked).ValidateUpdate(ctx, old.DeepCopy(), old); len(errs) != 0 || calls != "v" {
		t.Errorf("Validate on update: errs %v calls %q", errs, calls)
	}
	calls = ""
	hooked.ValidateUpdate = func(obj, o runtime.Object) field.ErrorList {
		calls += "u"
		return field.ErrorList{field.Forbidden(field.NewPath("data"), "immutable")}
	}
	if errs := newStrategy(hooked).ValidateUpdate(ctx, old.DeepCopy(), old); !hasErrorOn(errs, "data") || calls != "u" {
		t.Errorf("ValidateUpdate hook: errs %v calls %q", errs, calls)
	}
}

// TestValidateStatusUpdate: the status subresource runs ValidateStatusUpdate
// (and the metadata checks) instead of ValidateUpdate; without it, and on
// other subresources, ValidateUpdate.
func TestValidateStatusUpdate(t *testing.T) {
	ctx := context.Background()
	old := deployment(2)
	old.UID, old.ResourceVersion = "u1", "1"
	calls := ""
	hooked := deployments
	hooked.ValidateUpdate = func(_, _ runtime.Object) field.ErrorList { calls += "u"; return nil }
	hooked.ValidateStatusUpdate = func(obj, _ runtime.Object) field.ErrorList {
		calls += "s"
		return field.ErrorList{field.Invalid(field.NewPath("status", "replicas"), obj.(*appsv1.Deployment).Status.Replicas, "bad")}
	}
	main := &REST{strategy: newStrategy(hooked)}
	status := &subresourceStrategy{strategy: main.strategy, keep: keepOnlyStatus, validate: hooked.ValidateStatusUpdate}
	newUID := old.DeepCopy()
	newUID.UID = "u2"
	if errs := status.ValidateUpdate(ctx, newUID, old); !hasErrorOn(errs, "status.replicas") || !hasErrorOn(errs, "metadata.uid") || calls != "s" {
		t.Errorf("status update: errs %v calls %q", errs, calls)
	}
	calls = ""
	if errs := main.strategy.ValidateUpdate(ctx, old.DeepCopy(), old); len(errs) != 0 || calls != "u" {
		t.Errorf("main update: errs %v calls %q", errs, calls)
	}
	calls = ""
	other := &subresourceStrategy{strategy: main.strategy, keep: keepOnlyStatus}
	if errs := other.ValidateUpdate(ctx, old.DeepCopy(), old); len(errs) != 0 || calls != "u" {
		t.Errorf("subresource without its own validation: errs %v calls %q", errs, calls)
	}
}

func TestAttributes(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"app": "x"}},
		Spec:       corev1.PodSpec{NodeName: "n1"},
	}
	f := selectable.Fields{"spec.nodeName": selectable.Of(func(p *corev1.Pod) string { return p.Spec.NodeName })}
	labels, fields, err := attributes(pod, true, f)
	if err != nil {
		t.Fatal(err)
	}
	if labels["app"] != "x" {
		t.Errorf("labels %v", labels)
	}
	if fields["metadata.name"] != "p" || fields["metadata.namespace"] != "ns" || fields["spec.nodeName"] != "n1" {
		t.Errorf("fields %v", fields)
	}
	_, fields, err = attributes(pod, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fields["metadata.namespace"]; ok {
		t.Errorf("cluster-scoped attributes carry a namespace: %v", fields)
	}
}

func TestStrategyFlags(t *testing.T) {
	ctx := context.Background()
	s := newStrategy(configmaps)
	if !s.NamespaceScoped() || s.AllowCreateOnUpdate(ctx) || !s.AllowUnconditionalUpdate(ctx) {
		t.Errorf("configmaps: namespaced %v createOnUpdate %v unconditional %v", s.NamespaceScoped(), s.AllowCreateOnUpdate(ctx), s.AllowUnconditionalUpdate(ctx))
	}
	events := configmaps
	events.AllowCreateOnUpdate = true
	events.Namespaced = false
	s = newStrategy(events)
	if s.NamespaceScoped() || !s.AllowCreateOnUpdate(ctx) {
		t.Errorf("flags not taken from the Resource: namespaced %v createOnUpdate %v", s.NamespaceScoped(), s.AllowCreateOnUpdate(ctx))
	}
	if name := s.GenerateName("base-"); !strings.HasPrefix(name, "base-") || len(name) != len("base-")+5 {
		t.Errorf("generated name %q", name)
	}
}

func hasErrorOn(errs field.ErrorList, path string) bool {
	for _, e := range errs {
		if e.Field == path || strings.HasPrefix(e.Field, path+".") || strings.HasPrefix(e.Field, path+"[") {
			return true
		}
	}
	return false
}
