package legacytokentracking

import (
	"context"
	"testing"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestSync(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 3, 0, 30, 0, 0, time.FixedZone("east", 3600)))
	client := fake.NewClientset()
	c := newController(client, clk, rate.NewLimiter(rate.Every(30*time.Minute), 1))
	defer c.queue.ShutDown()
	store := c.informer.GetStore()
	get := func() *corev1.ConfigMap {
		cm, err := client.CoreV1().ConfigMaps("kube-system").Get(ctx, ConfigMapName, metav1.GetOptions{})
		if err != nil {
			return nil
		}
		return cm
	}

	// Missing: created, dated today in UTC.
	if err := c.sync(ctx); err != nil {
		t.Fatal(err)
	}
	cm := get()
	if cm == nil || cm.Data[ConfigMapDataKey] != "2026-12-02" || len(cm.Data) != 1 {
		t.Fatalf("configmap %+v, want since=2026-12-02", cm)
	}

	// Present with a date: left alone.
	_ = store.Add(cm)
	n := len(client.Actions())
	if err := c.sync(ctx); err != nil || len(client.Actions()) != n {
		t.Errorf("a valid ConfigMap was written: err %v, actions %v", err, client.Actions()[n:])
	}

	// An unreadable date is replaced.
	cm = cm.DeepCopy()
	cm.Data[ConfigMapDataKey] = "yesterday"
	if _, err := client.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = store.Update(cm)
	clk.Step(time.Hour)
	if err := c.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get().Data[ConfigMapDataKey]; got != "2026-12-03" {
		t.Errorf("since %q after repair, want 2026-12-03", got)
	}

	// Deleted: created again, but not twice within 30 minutes.
	_ = client.CoreV1().ConfigMaps("kube-system").Delete(ctx, ConfigMapName, metav1.DeleteOptions{})
	_ = store.Delete(cm)
	if err := c.sync(ctx); err != nil || get() == nil {
		t.Fatalf("not recreated after it was deleted: %v", err)
	}
	_ = client.CoreV1().ConfigMaps("kube-system").Delete(ctx, ConfigMapName, metav1.DeleteOptions{})
	clk.Step(10 * time.Minute)
	if err := c.sync(ctx); err != nil || get() != nil {
		t.Errorf("recreated 10 minutes after the last creation (err %v)", err)
	}
	if c.queue.Len() != 0 {
		t.Errorf("queue length %d: the retry must wait for the limit", c.queue.Len())
	}
	clk.Step(21 * time.Minute)
	if err := c.sync(ctx); err != nil || get() == nil {
		t.Errorf("not recreated 31 minutes after the last creation: %v", err)
	}
}
