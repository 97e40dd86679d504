package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// ctrlRound is what one controller manager process does: its scenarios in
// order, in one namespace.
type ctrlRound struct {
	key       string // its name for --only
	name      string
	scenarios []ctrlScenario
}

// ctrlScenario is one measurement.
type ctrlScenario struct {
	name string // in the report
	// prepare makes what the measurement starts from (not measured);
	// the controller manager is then waited idle.
	prepare func(ctx context.Context, st *roundState, rec recorder) error
	// run is the measurement: from its first call until it saw the
	// controllers done.
	run func(ctx context.Context, st *roundState) error
}

// roundState is one round's run on one controller manager.
type roundState struct {
	b  *ctrlBench
	ns string
	cm *process
}

// elapsedMetric is each scenario's time.
const elapsedMetric = "time (first call → done)"

const (
	webDeployment = "web"
	benchImage    = "registry.k8s.io/pause:3.10"
	updatedImage  = "registry.k8s.io/pause:3.9"
)

func (b *ctrlBench) rounds() []ctrlRound {
	cc := b.cc
	return []ctrlRound{
		{key: "deployment", name: fmt.Sprintf("Deployment of %d replicas", cc.replicas), scenarios: []ctrlScenario{
			{name: fmt.Sprintf("(a) Deployment of %d replicas on %d nodes → all Ready", cc.replicas, cc.nodes), run: createWeb},
			{name: "(b) rolling update of it (new image) → complete", run: rollWeb},
		}},
		{key: "namespace", name: fmt.Sprintf("namespace of %d objects", cc.objects), scenarios: []ctrlScenario{
			{name: fmt.Sprintf("(c) delete a namespace of %d objects of %d kinds → gone", cc.objects, objectKinds),
				prepare: fillNamespace, run: deleteNamespace},
		}},
		{key: "cascade", name: fmt.Sprintf("%d Deployments", cc.deployments), scenarios: []ctrlScenario{
			{name: fmt.Sprintf("(d) cascading (background) delete of %d Deployments → ReplicaSets and pods gone", cc.deployments),
				prepare: createDeployments, run: cascadeDeployments},
		}},
	}
}

// runRound runs r on a fresh controller manager name in a fresh namespace.
func (b *ctrlBench) runRound(ctx context.Context, r ctrlRound, name string) (err error) {
	ns, err := newNamespace(ctx, b.client(), "ctrl-"+r.key, false)
	if err != nil {
		return err
	}
	runtime.GC()
	b.seq++
	logPath := filepath.Join(b.logDir, fmt.Sprintf("%02d-%s-%s-controller-manager.log", b.seq, name, r.key))
	bin, _ := b.controllerManagerCommand(name, 0)
	cm, err := startProcess(logPath, bin, func(port int) []string {
		_, args := b.controllerManagerCommand(name, port)
		return args
	})
	if err != nil {
		return fmt.Errorf("start %s controller manager: %w", name, err)
	}
	st := &roundState{b: b, ns: ns, cm: cm}
	defer func() {
		if cerr := st.cleanUp(ctx, name, r); cerr != nil && err == nil {
			err = cerr
		}
		b.stopControllerManager(name, cm)
		_ = sleep(ctx, b.cc.settle)
	}()
	t0 := time.Now()
	if err := st.warmUp(ctx); err != nil {
		return fmt.Errorf("%s controller manager: %w", name, err)
	}
	warm, idle := time.Since(t0).Seconds(), cm.rssMiB()
	b.warmUps[name], b.idleRSS[name] = append(b.warmUps[name], warm), append(b.idleRSS[name], idle)
	const startup = "controller manager start (each round)"
	b.res.set(name, startup, "process start → synced (healthz, nodes untainted, canary Deployment Ready and cascaded away), median", "s", median(b.warmUps[name]))
	b.res.set(name, startup, "RSS once synced, median", "MiB", median(b.idleRSS[name]))
	logf("%s: %s: synced after %.1fs, RSS %.0f MiB", name, r.name, warm, idle)

	for _, s := range r.scenarios {
		if err := b.measure(ctx, st, s, name); err != nil {
			return err
		}
	}
	return nil
}

// stopControllerManager stops cm, noting an unclean stop. Upstream's
// exits with a status of its own after SIGTERM without leader election.
func (b *ctrlBench) stopControllerManager(name string, cm *process) {
	err := cm.stop()
	var exit *exec.ExitError
	if err != nil && !(name == "upstream" && errors.As(err, &exit)) {
		b.res.note("%s: controller manager did not stop cleanly: %v (log %s)", name, err, cm.logPath)
	}
}

// measure prepares s, waits for the controller manager to be idle, and
// runs and records s.
func (b *ctrlBench) measure(ctx context.Context, st *roundState, s ctrlScenario, name string) error {
	rec := recorder{res: b.res, server: name, workload: s.name}
	if s.prepare != nil {
		if err := s.prepare(ctx, st, rec); err != nil {
			rec.fail(elapsedMetric, "s", "preparing: "+err.Error())
			return err
		}
	}
	if waited, err := waitQuiet(ctx, st.cm, b.cc.quiet); err != nil {
		if ctx.Err() != nil || exited(st.cm) {
			return err
		}
		b.res.note("%s: %s: measured anyway: the controller manager was not idle: %v", name, s.name, err)
	} else if waited > 10*time.Second {
		logf("%s: %s: controller manager idle after %s", name, s.name, waited.Round(time.Second))
	}
	load := loadAvg()
	cpu0 := b.sampleCPU(st.cm)
	peakRSS := samplePeakRSS(st.cm, 250*time.Millisecond)
	t0 := time.Now()
	err := s.run(ctx, st)
	elapsed := time.Since(t0)
	cpu := cpu0.until(b.sampleCPU(st.cm))
	peak := peakRSS()
	b.res.Runs = append(b.res.Runs, run{Server: name, Workload: s.name, Started: t0, WallSeconds: elapsed.Seconds(),
		Load1Before: load, Load1After: loadAvg(), LogPath: st.cm.logPath,
		CPU: cpuUse{ServerSeconds: cpu.ControllerManager, BenchSeconds: cpu.Bench, OtherShare: cpu.OtherShare}, Error: errString(err)})
	if err != nil {
		rec.fail(elapsedMetric, "s", err.Error())
		return err
	}
	rec.set(elapsedMetric, "s", elapsed.Seconds())
	rec.set("controller manager CPU", "s", cpu.ControllerManager)
	rec.set("controller manager peak RSS", "MiB", peak)
	rec.set("API server CPU", "s", cpu.Server)
	rec.set("scheduler CPU", "s", cpu.Scheduler)
	rec.set("agent CPU", "s", cpu.Agent)
	rec.set("bench CPU", "s", cpu.Bench)
	rec.set("other processes' CPU share", "%", 100*cpu.OtherShare)
	logf("%s: %s: done in %s; controller manager CPU %.1fs, peak RSS %.0f MiB; CPU s: apiserver %.0f, scheduler %.0f, agent %.0f, bench %.0f; other processes %.0f%% of the machine",
		name, s.name, elapsed.Round(100*time.Millisecond), cpu.ControllerManager, peak, cpu.Server, cpu.Scheduler, cpu.Agent, cpu.Bench, 100*cpu.OtherShare)
	if cpu.OtherShare > maxOtherShare {
		b.res.note("%s: %s: other processes used %.0f%% of the CPUs meanwhile (load %.1f → %.1f): these numbers are skewed",
			name, s.name, 100*cpu.OtherShare, load, loadAvg())
	}
	return nil
}

func exited(p *process) bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// warmUp waits until the fresh controller manager serves /healthz, has
// made every node schedulable, created the namespace's ServiceAccount and
// taken a canary Deployment through create, Ready and cascading deletion.
func (st *roundState) warmUp(ctx context.Context) error {
	b, cs := st.b, st.b.client()
	hc, err := componentClient(b.t.cfg)
	if err != nil {
		return err
	}
	if err := st.cm.waitHealthy(ctx, hc, 2*time.Minute); err != nil {
		return err
	}
	err = poll(ctx, st.cm, 250*time.Millisecond, 3*time.Minute, func() (bool, string) {
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for i := range list.Items {
			if n := &list.Items[i]; len(n.Spec.Taints) == 0 && nodeReady(n) {
				ready++
			}
		}
		return ready >= b.cc.nodes, fmt.Sprintf("%d of %d nodes Ready and untainted", ready, b.cc.nodes)
	})
	if err != nil {
		return err
	}
	err = poll(ctx, st.cm, 100*time.Millisecond, 2*time.Minute, func() (bool, string) {
		_, err := cs.CoreV1().ServiceAccounts(st.ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprintf("ServiceAccount %s/default: %v", st.ns, err)
	})
	if err != nil {
		return err
	}
	const canary = "canary"
	if _, err := cs.AppsV1().Deployments(st.ns).Create(ctx, benchDeployment(canary, 1), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create the canary Deployment: %w", err)
	}
	if err := st.waitDeployment(ctx, canary, 2*time.Minute, func(d *appsv1.Deployment) bool { return d.Status.ReadyReplicas == 1 }); err != nil {
		return fmt.Errorf("canary Deployment: %w", err)
	}
	background := metav1.DeletePropagationBackground
	if err := cs.AppsV1().Deployments(st.ns).Delete(ctx, canary, metav1.DeleteOptions{PropagationPolicy: &background}); err != nil {
		return fmt.Errorf("delete the canary Deployment: %w", err)
	}
	if err := st.waitEmpty(ctx, "app="+canary, 2*time.Minute); err != nil {
		return fmt.Errorf("canary Deployment's cascading deletion: %w", err)
	}
	return nil
}

// cleanUp deletes the round's namespace (the controller manager still
// runs, for its namespace controller) and waits until it is gone.
func (st *roundState) cleanUp(ctx context.Context, name string, r ctrlRound) error {
	if exited(st.cm) {
		st.b.res.note("%s: %s: the controller manager exited (log %s); namespace %s is left", name, r.name, st.cm.logPath, st.ns)
		return nil
	}
	t0 := time.Now()
	cs := st.b.client()
	if err := cs.CoreV1().Namespaces().Delete(ctx, st.ns, metav1.DeleteOptions{}); apierrors.IsNotFound(err) {
		return nil // the scenario deleted it
	} else if err != nil {
		return fmt.Errorf("delete namespace %s: %w", st.ns, err)
	}
	if err := st.waitNamespaceGone(ctx, st.b.cc.timeout); err != nil {
		return fmt.Errorf("clean-up: %w", err)
	}
	took := time.Since(t0)
	st.b.res.set(name, "clean-up after each round (not measured above)", "namespace of "+r.name+": delete → gone", "s", took.Seconds())
	logf("%s: %s: clean-up: namespace gone after %s", name, r.name, took.Round(100*time.Millisecond))
	return nil
}

// benchDeployment is a Deployment of replicas minimal pods labeled
// app=name.
func benchDeployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: benchPodSpec()},
		},
	}
}

// benchPodSpec is one container asking for 10m CPU and 16Mi, without a
// service-account token.
func benchPodSpec() corev1.PodSpec {
	return corev1.PodSpec{
		Containers: []corev1.Container{{Name: "app", Image: benchImage,
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: kresource.MustParse("10m"), corev1.ResourceMemory: kresource.MustParse("16Mi")}}}},
		AutomountServiceAccountToken: ptr.To(false),
	}
}

// waitDeployment polls Deployment name until done says so of a status
// that observed its current generation.
func (st *roundState) waitDeployment(ctx context.Context, name string, within time.Duration, done func(*appsv1.Deployment) bool) error {
	deployments := st.b.client().AppsV1().Deployments(st.ns)
	return poll(ctx, st.cm, 100*time.Millisecond, within, func() (bool, string) {
		d, err := deployments.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return d.Status.ObservedGeneration >= d.Generation && done(d), deploymentState(d)
	})
}

func deploymentState(d *appsv1.Deployment) string {
	s := d.Status
	return fmt.Sprintf("Deployment %s generation %d observed %d: replicas %d, updated %d, ready %d, available %d",
		d.Name, d.Generation, s.ObservedGeneration, s.Replicas, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas)
}

// waitEmpty waits until no Deployment, ReplicaSet or pod matching selector
// is left in the namespace.
func (st *roundState) waitEmpty(ctx context.Context, selector string, within time.Duration) error {
	cs := st.b.client()
	opts := metav1.ListOptions{LabelSelector: selector, Limit: 1}
	return poll(ctx, st.cm, 250*time.Millisecond, within, func() (bool, string) {
		left, err := leftIn(ctx, cs, st.ns, opts)
		if err != nil {
			return false, err.Error()
		}
		return left == "", left + " left"
	})
}

// leftIn names the first kind of Deployments, ReplicaSets and pods of
// which opts still lists something in ns; "" if none.
func leftIn(ctx context.Context, cs kubernetes.Interface, ns string, opts metav1.ListOptions) (string, error) {
	if l, err := cs.AppsV1().Deployments(ns).List(ctx, opts); err != nil || len(l.Items) > 0 {
		return "Deployments", err
	}
	if l, err := cs.AppsV1().ReplicaSets(ns).List(ctx, opts); err != nil || len(l.Items) > 0 {
		return "ReplicaSets", err
	}
	if l, err := cs.CoreV1().Pods(ns).List(ctx, opts); err != nil || len(l.Items) > 0 {
		return "pods", err
	}
	return "", nil
}

func (st *roundState) waitNamespaceGone(ctx context.Context, within time.Duration) error {
	namespaces := st.b.client().CoreV1().Namespaces()
	return poll(ctx, st.cm, 100*time.Millisecond, within, func() (bool, string) {
		ns, err := namespaces.Get(ctx, st.ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, fmt.Sprintf("namespace %s %s, conditions %v", st.ns, ns.Status.Phase, namespaceConditions(ns))
	})
}

func namespaceConditions(ns *corev1.Namespace) []string {
	var out []string
	for _, c := range ns.Status.Conditions {
		if c.Status == corev1.ConditionTrue {
			out = append(out, fmt.Sprintf("%s: %s", c.Type, c.Message))
		}
	}
	return out
}

// createWeb is (a): the Deployment, until all its replicas are Ready.
func createWeb(ctx context.Context, st *roundState) error {
	n := int32(st.b.cc.replicas)
	if _, err := st.b.client().AppsV1().Deployments(st.ns).Create(ctx, benchDeployment(webDeployment, n), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Deployment: %w", err)
	}
	return st.waitDeployment(ctx, webDeployment, st.b.cc.timeout, func(d *appsv1.Deployment) bool { return d.Status.ReadyReplicas == n })
}

// imagePatch is the strategic merge patch kubectl set image sends.
func imagePatch(container, image string) []byte {
	return fmt.Appendf(nil, `{"spec":{"template":{"spec":{"containers":[{"name":%q,"image":%q}]}}}}`, container, image)
}

// rollWeb is (b): a new image, until the rollout is complete.
func rollWeb(ctx context.Context, st *roundState) error {
	cs := st.b.client()
	n := int32(st.b.cc.replicas)
	if _, err := cs.AppsV1().Deployments(st.ns).Patch(ctx, webDeployment, types.StrategicMergePatchType,
		imagePatch("app", updatedImage), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("set image: %w", err)
	}
	var oldLeft string
	err := st.waitDeployment(ctx, webDeployment, st.b.cc.timeout, func(d *appsv1.Deployment) bool {
		if !rolledOut(d, n) {
			return false
		}
		list, err := cs.AppsV1().ReplicaSets(st.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + webDeployment})
		if err != nil {
			oldLeft = err.Error()
			return false
		}
		oldLeft = oldReplicaSetsLeft(list.Items, updatedImage)
		return oldLeft == ""
	})
	if err != nil && oldLeft != "" {
		return fmt.Errorf("%w; %s", err, oldLeft)
	}
	return err
}

// rolledOut: every replica is of the current template, ready and
// available, and there are no others (kubectl rollout status's test).
func rolledOut(d *appsv1.Deployment, n int32) bool {
	s := d.Status
	return s.Replicas == n && s.UpdatedReplicas == n && s.ReadyReplicas == n && s.AvailableReplicas == n
}

// oldReplicaSetsLeft describes the ReplicaSets not of image that still
// want or have pods; "" if none.
func oldReplicaSetsLeft(sets []appsv1.ReplicaSet, image string) string {
	var left []string
	for i := range sets {
		rs := &sets[i]
		if c := rs.Spec.Template.Spec.Containers; len(c) > 0 && c[0].Image == image {
			continue
		}
		if ptr.Deref(rs.Spec.Replicas, 1) != 0 || rs.Status.Replicas != 0 {
			left = append(left, fmt.Sprintf("%s (%d desired, %d current)", rs.Name, ptr.Deref(rs.Spec.Replicas, 1), rs.Status.Replicas))
		}
	}
	if len(left) == 0 {
		return ""
	}
	return "old ReplicaSets left: " + strings.Join(left, ", ")
}

// objectKind creates the i-th object of one kind of (c).
type objectKind struct {
	name   string
	create func(ctx context.Context, cs kubernetes.Interface, ns string, i int) error
}

// namespaceKinds are the 10 kinds of (c): none starts a pod.
var namespaceKinds = [objectKinds]objectKind{
	{"ConfigMaps", func(ctx context.Context, cs kubernetes.Interface, ns string, i int) error {
		_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: named("cm", i),
			Data: map[string]string{"key": strings.Repeat("v", 64)}}, metav1.CreateOptions{})
		return err
	}},
	{"Secrets", func(ctx context.Context, cs kubernetes.Interface, ns string, i int) error {
		_, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: named("secret", i), Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{"key": []byte(strings.Repeat("s", 64))}}, metav1.CreateOptions{})
		return err
	}},
	{"Services (no selector)", func(ctx context.Context, cs kubernetes.Interface, ns string, i int) error {
		_, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: named("svc", i),
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}, metav1.CreateOptions{})
		return err
	}},
	{"ServiceAccounts", func(ctx context.Context, cs kubernetes.Interface, ns string, i int) error {
		_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: named("sa", i)}, metav1.CreateOptions{})
		return err
	}},
	{"Roles", func(ctx context.Context, cs kubernetes.Interface, ns string, i int) error {
		_, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: named("role", i), Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}}}, metav1.CreateOptions{})
		return err
	}},
	{"RoleBindings", func(ctx context.Context, cs kubernetes.Interface, ns string, i int) error {
		_, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: named("rb", i),
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: fmt.Sprintf("role-%05d", i)},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("user-%05d", i)}}},
			metav1.CreateOptions{})
		return err
	}},
	{"PodTemplates", func(ctx context.Context, cs kubernetes.Interface, ns string, i int) error {
		_, err := cs.CoreV1().PodTemplates(ns).Create(ctx, &corev1.PodTemplate{ObjectMeta: named("pt", i),
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "pt"}}, Spec: benchPodSpec()}},
			metav1.CreateOptions{})
		return err
	}},
	{"Jobs (suspended)", func(ctx context.Context, cs kubernetes.Interface, ns string, i int) error {
		spec := benchPodSpec()
		spec.RestartPolicy = corev1.RestartPolicyNever
		_, err := cs.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{ObjectMeta: named("job", i), Spec: batchv1.JobSpec{
			Suspend: ptr.To(true), Template: corev1.PodTemplateSpec{Spec: spec}}}, metav1.CreateOptions{})
		return err
	}},
	{"ReplicaSets (0 replicas)", func(ctx context.Context, cs kubernetes.Interface, ns string, i int) error {
		labels := map[string]string{"app": fmt.Sprintf("rs-%05d", i)}
		_, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{ObjectMeta: named("rs", i), Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: benchPodSpec()}}}, metav1.CreateOptions{})
		return err
	}},
	{"LimitRanges", func(ctx context.Context, cs kubernetes.Interface, ns string, i int) error {
		_, err := cs.CoreV1().LimitRanges(ns).Create(ctx, &corev1.LimitRange{ObjectMeta: named("lr", i), Spec: corev1.LimitRangeSpec{
			Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer,
				Max: corev1.ResourceList{corev1.ResourceCPU: kresource.MustParse("64")}}}}}, metav1.CreateOptions{})
		return err
	}},
}

func named(prefix string, i int) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: fmt.Sprintf("%s-%05d", prefix, i)}
}

// objectOf is the kind and the index within it of (c)'s n-th object: the
// kinds take turns, so each client creates all kinds.
func objectOf(n int) (kind, i int) { return n % objectKinds, n / objectKinds }

// fillNamespace prepares (c): the objects, by --ctrl-clients clients.
func fillNamespace(ctx context.Context, st *roundState, rec recorder) error {
	cs, err := st.b.t.clients(st.b.cc.clients)
	if err != nil {
		return err
	}
	total := st.b.cc.objects
	s := runClients(ctx, len(cs), budget{ops: total}, func(ctx context.Context, c, i int) (bool, error) {
		kind, idx := objectOf(i*len(cs) + c)
		if err := namespaceKinds[kind].create(ctx, cs[c], st.ns, idx); err != nil {
			return false, fmt.Errorf("%s: %w", namespaceKinds[kind].name, err)
		}
		return false, nil
	})
	if s.Errors > 0 {
		return fmt.Errorf("creating %d objects: %d errors, e.g. %s", total, s.Errors, strings.Join(s.ErrorSamples, " | "))
	}
	logf("%s: created %d objects (%d each of %d kinds) in %s", rec.server, s.Ops, total/objectKinds, objectKinds, s.Elapsed.Round(time.Millisecond))
	return nil
}

// deleteNamespace is (c): the namespace deleted, until it is gone.
func deleteNamespace(ctx context.Context, st *roundState) error {
	if err := st.b.client().CoreV1().Namespaces().Delete(ctx, st.ns, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("delete namespace: %w", err)
	}
	return st.waitNamespaceGone(ctx, st.b.cc.timeout)
}

func cascadeName(i int) string { return fmt.Sprintf("d-%05d", i) }

// createDeployments prepares (d): the Deployments of one replica, by
// --ctrl-clients clients, until all are Ready (that time is recorded).
func createDeployments(ctx context.Context, st *roundState, rec recorder) error {
	cs, err := st.b.t.clients(st.b.cc.clients)
	if err != nil {
		return err
	}
	total := st.b.cc.deployments
	t0 := time.Now()
	s := runClients(ctx, len(cs), budget{ops: total}, func(ctx context.Context, c, i int) (bool, error) {
		_, err := cs[c].AppsV1().Deployments(st.ns).Create(ctx, benchDeployment(cascadeName(i*len(cs)+c), 1), metav1.CreateOptions{})
		return false, err
	})
	if s.Errors > 0 {
		return fmt.Errorf("creating %d Deployments: %d errors, e.g. %s", total, s.Errors, strings.Join(s.ErrorSamples, " | "))
	}
	err = poll(ctx, st.cm, time.Second, st.b.cc.timeout, func() (bool, string) {
		list, err := st.b.client().AppsV1().Deployments(st.ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for i := range list.Items {
			if d := &list.Items[i]; d.Status.ObservedGeneration >= d.Generation && d.Status.ReadyReplicas == 1 {
				ready++
			}
		}
		return ready == total, fmt.Sprintf("%d of %d Deployments Ready", ready, total)
	})
	if err != nil {
		return err
	}
	took := time.Since(t0)
	rec.set(fmt.Sprintf("preparing: %d Deployments created → all Ready", total), "s", took.Seconds())
	logf("%s: %d Deployments Ready after %s", rec.server, total, took.Round(100*time.Millisecond))
	return nil
}

// cascadeDeployments is (d): every Deployment deleted with background
// propagation, until no Deployment, ReplicaSet or pod is left.
func cascadeDeployments(ctx context.Context, st *roundState) error {
	cs, err := st.b.t.clients(st.b.cc.clients)
	if err != nil {
		return err
	}
	background := metav1.DeletePropagationBackground
	s := runClients(ctx, len(cs), budget{ops: st.b.cc.deployments}, func(ctx context.Context, c, i int) (bool, error) {
		err := cs[c].AppsV1().Deployments(st.ns).Delete(ctx, cascadeName(i*len(cs)+c), metav1.DeleteOptions{PropagationPolicy: &background})
		return false, err
	})
	if s.Errors > 0 {
		return fmt.Errorf("deleting %d Deployments: %d errors, e.g. %s", st.b.cc.deployments, s.Errors, strings.Join(s.ErrorSamples, " | "))
	}
	return st.waitEmpty(ctx, "", st.b.cc.timeout)
}

// waitQuiet waits until p has used less than a tenth of a CPU in each of
// three consecutive seconds; it returns how long that took.
func waitQuiet(ctx context.Context, p *process, within time.Duration) (time.Duration, error) {
	t0 := time.Now()
	pid := strconv.Itoa(p.pid)
	prev, prevAt := procCPU(pid), time.Now()
	calm := 0
	err := poll(ctx, p, time.Second, within, func() (bool, string) {
		now, at := procCPU(pid), time.Now()
		if at.Sub(prevAt) < 500*time.Millisecond {
			return false, "" // the first, immediate call
		}
		rate := (now - prev).Seconds() / at.Sub(prevAt).Seconds()
		prev, prevAt = now, at
		if calm++; rate >= 0.1 {
			calm = 0
		}
		return calm >= 3, fmt.Sprintf("using %.0f%% of a CPU", 100*rate)
	})
	return time.Since(t0), err
}

// samplePeakRSS samples p's RSS every interval until the returned
// function is called, which returns the highest sample (MiB).
func samplePeakRSS(p *process, every time.Duration) func() float64 {
	done, result := make(chan struct{}), make(chan float64, 1)
	go func() {
		peak := p.rssMiB()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				result <- max(peak, p.rssMiB())
				return
			case <-tick.C:
				peak = max(peak, p.rssMiB())
			}
		}
	}()
	return func() float64 {
		close(done)
		return <-result
	}
}

// ctrlCPU is the CPU time of the processes of a measurement: the
// scheduler scenarios' sample (its "scheduler" the controller manager)
// and the scheduler's.
type ctrlCPU struct {
	base  schedCPU
	sched time.Duration
}

func (b *ctrlBench) sampleCPU(cm *process) ctrlCPU {
	return ctrlCPU{base: sampleSchedCPU(b.srv.PID, b.agent.pid, cm.pid), sched: procCPU(strconv.Itoa(b.sched.pid))}
}

// ctrlCPUUse is what happened between two samples, in CPU seconds.
type ctrlCPUUse struct {
	ControllerManager, Server, Scheduler, Agent, Bench float64
	// OtherShare is the fraction of all CPUs' time that other processes
	// used.
	OtherShare float64
}

func (a ctrlCPU) until(b ctrlCPU) ctrlCPUUse {
	cpus := runtime.NumCPU()
	u := a.base.until(b.base, cpus)
	sched := (b.sched - a.sched).Seconds()
	share := u.OtherShare
	if capacity := b.base.at.Sub(a.base.at).Seconds() * float64(cpus); capacity > 0 {
		share = max(u.OtherShare-sched/capacity, 0)
	}
	return ctrlCPUUse{ControllerManager: u.Scheduler, Server: u.Server, Scheduler: sched, Agent: u.Agent, Bench: u.Bench, OtherShare: share}
}
