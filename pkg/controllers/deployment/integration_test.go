package deployment_test

// Against a real skiff API server, the deployment controller as skiff runs
// it (its ServiceAccount, so its RBAC role is exercised) and no ReplicaSet
// controller: the test's rsDriver plays it, reporting every ReplicaSet's
// pods as created at once and available unless their image is held back,
// so that each step of a rollout can be checked exactly.

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/controllers"
	"github.com/skiff-dev/skiff/pkg/controllers/deployment"
	"github.com/skiff-dev/skiff/test/integration"
)

// rsDriver stands in for the ReplicaSet controller of one namespace.
type rsDriver struct {
	t  *testing.T
	cs kubernetes.Interface
	ns string

	mu   sync.Mutex
	held map[string]bool // images whose pods never become available
	// watch, if set, sees every state of the namespace's ReplicaSets.
	watch  func(rss []*appsv1.ReplicaSet)
	lister cache.Indexer
}

func startDriver(t *testing.T, cs kubernetes.Interface, ns string) *rsDriver {
	dr := &rsDriver{t: t, cs: cs, ns: ns, held: map[string]bool{}}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := f.Apps().V1().ReplicaSets().Informer()
	dr.lister = inf.GetIndexer()
	work := make(chan string, 1000)
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { dr.observe(); work <- o.(*appsv1.ReplicaSet).Name },
		UpdateFunc: func(_, o any) { dr.observe(); work <- o.(*appsv1.ReplicaSet).Name },
		DeleteFunc: func(any) { dr.observe() },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	f.Start(ctx.Done())
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case name := <-work:
				dr.report(ctx, name)
			}
		}
	}()
	return dr
}

func (dr *rsDriver) hold(image string, held bool) {
	dr.mu.Lock()
	dr.held[image] = held
	dr.mu.Unlock()
	// Report the ReplicaSets anew.
	for _, o := range dr.lister.List() {
		if _, err := dr.cs.AppsV1().ReplicaSets(dr.ns).Patch(context.Background(), o.(*appsv1.ReplicaSet).Name,
			"application/merge-patch+json", []byte(`{"metadata":{"annotations":{"test/poke":"`+time.Now().String()+`"}}}`), metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
			dr.t.Errorf("poking: %v", err)
		}
	}
}

func (dr *rsDriver) observe() {
	dr.mu.Lock()
	defer dr.mu.Unlock()
	if dr.watch == nil {
		return
	}
	var rss []*appsv1.ReplicaSet
	for _, o := range dr.lister.List() {
		rss = append(rss, o.(*appsv1.ReplicaSet))
	}
	dr.watch(rss)
}

func (dr *rsDriver) setWatch(f func([]*appsv1.ReplicaSet)) {
	dr.mu.Lock()
	dr.watch = f
	dr.mu.Unlock()
}

// report writes the status a ReplicaSet controller would once its pods
// are all there.
func (dr *rsDriver) report(ctx context.Context, name string) {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		rs, err := dr.cs.AppsV1().ReplicaSets(dr.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n := *rs.Spec.Replicas
		dr.mu.Lock()
		avail := n
		if dr.held[rs.Spec.Template.Spec.Containers[0].Image] {
			avail = 0
		}
		dr.mu.Unlock()
		want := appsv1.ReplicaSetStatus{Replicas: n, FullyLabeledReplicas: n, ReadyReplicas: avail, AvailableReplicas: avail,
			ObservedGeneration: rs.Generation, TerminatingReplicas: ptr.To[int32](0)}
		if equalStatus(rs.Status, want) {
			return nil
		}
		rs.Status = want
		_, err = dr.cs.AppsV1().ReplicaSets(dr.ns).UpdateStatus(ctx, rs, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		dr.t.Errorf("reporting %s: %v", name, err)
	}
}

func equalStatus(a, b appsv1.ReplicaSetStatus) bool {
	return a.Replicas == b.Replicas && a.ReadyReplicas == b.ReadyReplicas && a.AvailableReplicas == b.AvailableReplicas &&
		a.FullyLabeledReplicas == b.FullyLabeledReplicas && a.ObservedGeneration == b.ObservedGeneration &&
		ptr.Deref(a.TerminatingReplicas, -1) == 0
}

func setup(t *testing.T) (kubernetes.Interface, func(t *testing.T) (string, *rsDriver)) {
	cfg := integration.StartAPIServer(t, integration.ServerOptions{LogFilter: func(l string) bool {
		return strings.Contains(l, "eployment") || strings.Contains(l, "eplicaSet")
	}})
	integration.RunControllers(t, cfg, controllers.Options{Controllers: []string{deployment.Name}, UseServiceAccountCredentials: true})
	cs := kubernetes.NewForConfigOrDie(cfg)
	n := 0
	return cs, func(t *testing.T) (string, *rsDriver) {
		n++
		ns := fmt.Sprintf("deploy-%d", n)
		if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return ns, startDriver(t, cs, ns)
	}
}

func newDeployment(name string, replicas int32, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

func rollingParams(d *appsv1.Deployment, surge, unavailable int) *appsv1.Deployment {
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
		MaxSurge: ptr.To(intstr.FromInt(surge)), MaxUnavailable: ptr.To(intstr.FromInt(unavailable))}}
	return d
}

func create(t *testing.T, cs kubernetes.Interface, ns string, d *appsv1.Deployment) *appsv1.Deployment {
	t.Helper()
	got, err := cs.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// change updates the Deployment with f, retrying on conflicts.
func change(t *testing.T, cs kubernetes.Interface, ns, name string, f func(*appsv1.Deployment)) {
	t.Helper()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		f(d)
		_, err = cs.AppsV1().Deployments(ns).Update(context.Background(), d, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func setImage(t *testing.T, cs kubernetes.Interface, ns, name, image string) {
	t.Helper()
	change(t, cs, ns, name, func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image })
}

func getDeployment(t *testing.T, cs kubernetes.Interface, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// replicaSets are the namespace's, oldest first, as "image=spec" strings
// and objects.
func replicaSets(t *testing.T, cs kubernetes.Interface, ns string) (string, []appsv1.ReplicaSet) {
	t.Helper()
	list, err := cs.AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(list.Items, func(i, j int) bool {
		return list.Items[i].Annotations[deployment.RevisionAnnotation] < list.Items[j].Annotations[deployment.RevisionAnnotation]
	})
	var s []string
	for _, rs := range list.Items {
		s = append(s, fmt.Sprintf("%s=%d", rs.Spec.Template.Spec.Containers[0].Image, *rs.Spec.Replicas))
	}
	return strings.Join(s, " "), list.Items
}

func waitReplicaSets(t *testing.T, cs kubernetes.Interface, ns, want string) []appsv1.ReplicaSet {
	t.Helper()
	var items []appsv1.ReplicaSet
	integration.Eventually(t, 20*time.Second, func() string {
		var got string
		if got, items = replicaSets(t, cs, ns); got != want {
			return fmt.Sprintf("ReplicaSets %q, want %q", got, want)
		}
		return ""
	})
	return items
}

func condition(d *appsv1.Deployment, typ appsv1.DeploymentConditionType) string {
	for _, c := range d.Status.Conditions {
		if c.Type == typ {
			return fmt.Sprintf("%s %s %s", c.Status, c.Reason, c.Message)
		}
	}
	return ""
}

// waitComplete waits for a finished rollout: status counts all replicas,
// Available True, Progressing NewReplicaSetAvailable.
func waitComplete(t *testing.T, cs kubernetes.Interface, ns, name string) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	integration.Eventually(t, 20*time.Second, func() string {
		d = getDeployment(t, cs, ns, name)
		s := d.Status
		n := *d.Spec.Replicas
		if s.ObservedGeneration != d.Generation || s.Replicas != n || s.UpdatedReplicas != n || s.ReadyReplicas != n || s.AvailableReplicas != n ||
			s.UnavailableReplicas != 0 || !strings.HasPrefix(condition(d, appsv1.DeploymentProgressing), "True NewReplicaSetAvailable") {
			return fmt.Sprintf("status %+v", s)
		}
		return ""
	})
	return d
}

func events(t *testing.T, cs kubernetes.Interface, ns, name string) []string {
	t.Helper()
	list, err := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].CreationTimestamp.Before(&list.Items[j].CreationTimestamp) })
	var out []string
	for _, e := range list.Items {
		if e.Source.Component != deployment.Name {
			t.Errorf("event %q from %q", e.Message, e.Source.Component)
		}
		out = append(out, e.Type+" "+e.Reason+" "+e.Message)
	}
	return out
}

func waitEvent(t *testing.T, cs kubernetes.Interface, ns, name, want string) {
	t.Helper()
	integration.Eventually(t, 10*time.Second, func() string {
		got := events(t, cs, ns, name)
		if !slices.Contains(got, want) {
			return fmt.Sprintf("events %q, want %q", got, want)
		}
		return ""
	})
}

func TestDeployment(t *testing.T) {
	cs, namespace := setup(t)
	ctx := context.Background()

	// A Deployment of 10 (maxSurge 3, maxUnavailable 2) gets its
	// ReplicaSet <name>-<pod-template-hash>, with the hash label and
	// selector, revision 1, desired/max-replicas, ownerReference; its
	// status and conditions follow. A new image whose pods never become
	// available stops at 8 old + 5 new (13 = 10+maxSurge, 8 available);
	// scaled to 20 meanwhile, both grow in proportion (14 + 9); released,
	// the rollout ends with the new ReplicaSet alone, revision 2.
	t.Run("RollingUpdate", func(t *testing.T) {
		ns, dr := namespace(t)
		create(t, cs, ns, rollingParams(newDeployment("web", 10, "nginx:1"), 3, 2))
		rss := waitReplicaSets(t, cs, ns, "nginx:1=10")
		d := waitComplete(t, cs, ns, "web")
		rs := rss[0]
		hash := rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
		if want := deployment.ComputeHash(&d.Spec.Template, nil); hash != want || rs.Name != "web-"+hash ||
			rs.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != hash || rs.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
			t.Errorf("ReplicaSet %s labels %v selector %v template labels %v, want hash %s", rs.Name, rs.Labels, rs.Spec.Selector, rs.Spec.Template.Labels, want)
		}
		if a := rs.Annotations; a[deployment.RevisionAnnotation] != "1" || a[deployment.DesiredReplicasAnnotation] != "10" || a[deployment.MaxReplicasAnnotation] != "13" {
			t.Errorf("ReplicaSet annotations %v", a)
		}
		if ref := metav1.GetControllerOf(&rs); ref == nil || ref.UID != d.UID || ref.Kind != "Deployment" || !ptr.Deref(ref.BlockOwnerDeletion, false) {
			t.Errorf("ReplicaSet owners %+v", rs.OwnerReferences)
		}
		if d.Annotations[deployment.RevisionAnnotation] != "1" || condition(d, appsv1.DeploymentAvailable) != "True MinimumReplicasAvailable Deployment has minimum availability." ||
			condition(d, appsv1.DeploymentProgressing) != fmt.Sprintf("True NewReplicaSetAvailable ReplicaSet %q has successfully progressed.", rs.Name) ||
			ptr.Deref(d.Status.TerminatingReplicas, -1) != 0 {
			t.Errorf("deployment annotations %v status %+v", d.Annotations, d.Status)
		}
		waitEvent(t, cs, ns, "web", "Normal ScalingReplicaSet Scaled up replica set "+rs.Name+" from 0 to 10")

		var mu sync.Mutex
		maxTotal, minAvailable := int32(0), int32(1000)
		dr.setWatch(func(rss []*appsv1.ReplicaSet) {
			var total, avail int32
			for _, rs := range rss {
				total += *rs.Spec.Replicas
				avail += rs.Status.AvailableReplicas
			}
			mu.Lock()
			maxTotal, minAvailable = max(maxTotal, total), min(minAvailable, avail)
			mu.Unlock()
		})
		dr.hold("nginx:2", true)
		setImage(t, cs, ns, "web", "nginx:2")
		waitReplicaSets(t, cs, ns, "nginx:1=8 nginx:2=5")
		integration.Eventually(t, 10*time.Second, func() string {
			d = getDeployment(t, cs, ns, "web")
			if s := d.Status; s.Replicas != 13 || s.UpdatedReplicas != 5 || s.AvailableReplicas != 8 || s.UnavailableReplicas != 5 ||
				!strings.HasPrefix(condition(d, appsv1.DeploymentProgressing), "True ReplicaSetUpdated") || d.Annotations[deployment.RevisionAnnotation] != "2" {
				return fmt.Sprintf("status %+v annotations %v", s, d.Annotations)
			}
			return ""
		})
		time.Sleep(500 * time.Millisecond) // nothing more happens
		if got, _ := replicaSets(t, cs, ns); got != "nginx:1=8 nginx:2=5" {
			t.Errorf("stuck rollout went on: %s", got)
		}
		mu.Lock()
		if maxTotal > 13 || minAvailable < 8 {
			t.Errorf("during the rollout: up to %d replicas (maxSurge allows 13), down to %d available (maxUnavailable allows 8)", maxTotal, minAvailable)
		}
		mu.Unlock()
		dr.setWatch(nil)

		change(t, cs, ns, "web", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](20) })
		rss = waitReplicaSets(t, cs, ns, "nginx:1=14 nginx:2=9")
		for _, rs := range rss {
			if a := rs.Annotations; a[deployment.DesiredReplicasAnnotation] != "20" || a[deployment.MaxReplicasAnnotation] != "23" {
				t.Errorf("%s annotations %v", rs.Name, a)
			}
		}

		dr.hold("nginx:2", false)
		rss = waitReplicaSets(t, cs, ns, "nginx:1=0 nginx:2=20")
		d = waitComplete(t, cs, ns, "web")
		if d.Annotations[deployment.RevisionAnnotation] != "2" || rss[1].Annotations[deployment.RevisionAnnotation] != "2" {
			t.Errorf("revisions: deployment %v, new ReplicaSet %v", d.Annotations, rss[1].Annotations)
		}
		waitEvent(t, cs, ns, "web", "Normal ScalingReplicaSet Scaled up replica set "+rss[1].Name+" from 0 to 3")
		waitEvent(t, cs, ns, "web", "Normal ScalingReplicaSet Scaled down replica set "+rss[0].Name+" from 10 to 8")
	})

	// Recreate: the old ReplicaSet goes to 0 and reports no pods before the
	// new one exists; never both have replicas.
	t.Run("Recreate", func(t *testing.T) {
		ns, dr := namespace(t)
		d := newDeployment("rec", 3, "nginx:1")
		d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType
		create(t, cs, ns, d)
		waitReplicaSets(t, cs, ns, "nginx:1=3")
		waitComplete(t, cs, ns, "rec")
		var mu sync.Mutex
		overlap := ""
		dr.setWatch(func(rss []*appsv1.ReplicaSet) {
			active := 0
			for _, rs := range rss {
				if *rs.Spec.Replicas > 0 || rs.Status.Replicas > 0 {
					active++
				}
			}
			if active > 1 {
				mu.Lock()
				overlap = fmt.Sprint(len(rss), " ReplicaSets active at once")
				mu.Unlock()
			}
		})
		setImage(t, cs, ns, "rec", "nginx:2")
		waitReplicaSets(t, cs, ns, "nginx:1=0 nginx:2=3")
		waitComplete(t, cs, ns, "rec")
		mu.Lock()
		if overlap != "" {
			t.Error(overlap)
		}
		mu.Unlock()
		dr.setWatch(nil)
	})

	// revisionHistoryLimit 1 keeps one old ReplicaSet; a rollback (the
	// deprecated annotation) brings revision 2's template back as revision 4,
	// its own revision kept in revision-history.
	t.Run("HistoryAndRollback", func(t *testing.T) {
		ns, _ := namespace(t)
		d := newDeployment("hist", 2, "nginx:1")
		d.Spec.RevisionHistoryLimit = ptr.To[int32](1)
		create(t, cs, ns, d)
		waitComplete(t, cs, ns, "hist")
		setImage(t, cs, ns, "hist", "nginx:2")
		waitReplicaSets(t, cs, ns, "nginx:1=0 nginx:2=2")
		waitComplete(t, cs, ns, "hist")
		setImage(t, cs, ns, "hist", "nginx:3")
		waitReplicaSets(t, cs, ns, "nginx:2=0 nginx:3=2")
		waitComplete(t, cs, ns, "hist")

		change(t, cs, ns, "hist", func(d *appsv1.Deployment) { d.Annotations[appsv1.DeprecatedRollbackTo] = "0" })
		rss := waitReplicaSets(t, cs, ns, "nginx:3=0 nginx:2=2")
		if a := rss[1].Annotations; a[deployment.RevisionAnnotation] != "4" || a[deployment.RevisionHistoryAnnotation] != "2" {
			t.Errorf("rolled back ReplicaSet annotations %v", a)
		}
		d = waitComplete(t, cs, ns, "hist")
		if _, ok := d.Annotations[appsv1.DeprecatedRollbackTo]; ok || d.Annotations[deployment.RevisionAnnotation] != "4" {
			t.Errorf("deployment annotations %v", d.Annotations)
		}
		waitEvent(t, cs, ns, "hist", `Normal DeploymentRollback Rolled back deployment "hist" to revision 2`)
		change(t, cs, ns, "hist", func(d *appsv1.Deployment) { d.Annotations[appsv1.DeprecatedRollbackTo] = "9" })
		waitEvent(t, cs, ns, "hist", "Warning DeploymentRollbackRevisionNotFound Unable to find the revision to rollback to.")
	})

	// Paused: Progressing Unknown DeploymentPaused, a new template makes no
	// ReplicaSet, scaling still works; resumed: DeploymentResumed, then the
	// rollout.
	t.Run("Pause", func(t *testing.T) {
		ns, _ := namespace(t)
		create(t, cs, ns, newDeployment("p", 2, "nginx:1"))
		waitComplete(t, cs, ns, "p")
		change(t, cs, ns, "p", func(d *appsv1.Deployment) { d.Spec.Paused = true })
		integration.Eventually(t, 10*time.Second, func() string {
			if c := condition(getDeployment(t, cs, ns, "p"), appsv1.DeploymentProgressing); c != "Unknown DeploymentPaused Deployment is paused" {
				return "Progressing " + c
			}
			return ""
		})
		change(t, cs, ns, "p", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Image = "nginx:2"
			d.Spec.Replicas = ptr.To[int32](3)
		})
		waitReplicaSets(t, cs, ns, "nginx:1=3")
		time.Sleep(300 * time.Millisecond)
		if got, _ := replicaSets(t, cs, ns); got != "nginx:1=3" {
			t.Errorf("paused deployment rolled out: %s", got)
		}
		change(t, cs, ns, "p", func(d *appsv1.Deployment) { d.Spec.Paused = false })
		waitReplicaSets(t, cs, ns, "nginx:1=0 nginx:2=3")
		waitComplete(t, cs, ns, "p")
	})

	// No progress within progressDeadlineSeconds: Progressing False
	// ProgressDeadlineExceeded, Available False.
	t.Run("ProgressDeadline", func(t *testing.T) {
		ns, dr := namespace(t)
		dr.hold("stuck", true)
		d := newDeployment("slow", 2, "stuck")
		d.Spec.ProgressDeadlineSeconds = ptr.To[int32](2)
		create(t, cs, ns, d)
		start := time.Now()
		var rs string
		integration.Eventually(t, 15*time.Second, func() string {
			d = getDeployment(t, cs, ns, "slow")
			if c := condition(d, appsv1.DeploymentProgressing); !strings.HasPrefix(c, "False ProgressDeadlineExceeded") {
				return "Progressing " + c
			}
			return ""
		})
		if took := time.Since(start); took < time.Second {
			t.Errorf("deadline of 2s exceeded after %s", took)
		}
		_, items := replicaSets(t, cs, ns)
		rs = items[0].Name
		if got, want := condition(d, appsv1.DeploymentProgressing), fmt.Sprintf("False ProgressDeadlineExceeded ReplicaSet %q has timed out progressing.", rs); got != want {
			t.Errorf("Progressing %q, want %q", got, want)
		}
		if got := condition(d, appsv1.DeploymentAvailable); got != "False MinimumReplicasUnavailable Deployment does not have minimum availability." {
			t.Errorf("Available %q", got)
		}
	})

	// An orphan ReplicaSet the selector matches, with the Deployment's
	// template, is adopted as its new ReplicaSet; one relabelled out of
	// the selector is released.
	t.Run("AdoptAndRelease", func(t *testing.T) {
		ns, _ := namespace(t)
		d := newDeployment("adopt", 2, "nginx:1")
		orphan := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "orphan", Labels: d.Spec.Template.Labels},
			Spec:       appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2), Selector: d.Spec.Selector, Template: d.Spec.Template},
		}
		if _, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		d = create(t, cs, ns, d)
		integration.Eventually(t, 10*time.Second, func() string {
			rs, err := cs.AppsV1().ReplicaSets(ns).Get(ctx, "orphan", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			if ref := metav1.GetControllerOf(rs); ref == nil || ref.UID != d.UID || rs.Annotations[deployment.RevisionAnnotation] != "1" {
				return fmt.Sprintf("orphan owners %v annotations %v", rs.OwnerReferences, rs.Annotations)
			}
			return ""
		})
		waitComplete(t, cs, ns, "adopt")
		if got, _ := replicaSets(t, cs, ns); got != "nginx:1=2" {
			t.Errorf("ReplicaSets %s", got)
		}
		if _, err := cs.AppsV1().ReplicaSets(ns).Patch(ctx, "orphan", "application/merge-patch+json", []byte(`{"metadata":{"labels":{"app":"other"}}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		integration.Eventually(t, 10*time.Second, func() string {
			rs, err := cs.AppsV1().ReplicaSets(ns).Get(ctx, "orphan", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			if len(rs.OwnerReferences) != 0 {
				return fmt.Sprintf("owners %v", rs.OwnerReferences)
			}
			return ""
		})
		// The Deployment makes itself a ReplicaSet anew.
		integration.Eventually(t, 10*time.Second, func() string {
			_, items := replicaSets(t, cs, ns)
			for _, rs := range items {
				if metav1.IsControlledBy(&rs, d) && *rs.Spec.Replicas == 2 {
					return ""
				}
			}
			return "no new ReplicaSet"
		})
	})

	// A ReplicaSet of another template already holds the name
	// <name>-<hash>: collisionCount becomes 1 and the ReplicaSet is named
	// by the hash with it.
	t.Run("HashCollision", func(t *testing.T) {
		ns, _ := namespace(t)
		// Paused, it makes no ReplicaSet: the hash of its template (as
		// the server defaulted it) can be taken first.
		d := newDeployment("clash", 1, "nginx:1")
		d.Spec.Paused = true
		d = create(t, cs, ns, d)
		hash := deployment.ComputeHash(&d.Spec.Template, nil)
		other := d.Spec.Template.DeepCopy()
		other.Labels = map[string]string{"app": "elsewhere"}
		squatter := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "clash-" + hash, Labels: other.Labels},
			Spec:       appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{MatchLabels: other.Labels}, Template: *other},
		}
		if _, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, squatter, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		change(t, cs, ns, "clash", func(d *appsv1.Deployment) { d.Spec.Paused = false })
		d = waitComplete(t, cs, ns, "clash")
		if d.Status.CollisionCount == nil || *d.Status.CollisionCount != 1 {
			t.Errorf("collisionCount %v", d.Status.CollisionCount)
		}
		want := "clash-" + deployment.ComputeHash(&d.Spec.Template, ptr.To[int32](1))
		if _, err := cs.AppsV1().ReplicaSets(ns).Get(ctx, want, metav1.GetOptions{}); err != nil {
			t.Errorf("ReplicaSet %s: %v", want, err)
		}
	})
}
