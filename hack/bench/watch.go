package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// watchCreators is how many clients create the watched ConfigMaps.
const watchCreators = 16

// watchWorkload opens cfg.watchers watches on a fresh namespace's
// ConfigMaps, creates cfg.events ConfigMaps there and times how long it
// takes until every watcher has seen every one.
func watchWorkload(cfg *config) workload {
	name := fmt.Sprintf("watch %d watchers × %d events", cfg.watchers, cfg.events)
	return workload{key: "watch", name: name, run: func(ctx context.Context, t *target, rec recorder) error {
		// Watchers and creators each have their own connection.
		all, err := t.clients(cfg.watchers + watchCreators)
		if err != nil {
			return err
		}
		watchers, creators := all[:cfg.watchers], all[cfg.watchers:]
		ns, err := newNamespace(ctx, t.admin(), "watch", false)
		if err != nil {
			return err
		}
		list, err := t.admin().CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()

		// Each watcher reports the sentinel ConfigMap, then the time it
		// saw the last of the events.
		sentinelSeen := make(chan struct{}, cfg.watchers)
		doneAt := make([]time.Time, cfg.watchers)
		var done sync.WaitGroup
		var errMu sync.Mutex
		var watchErr error
		// Watches the server closed before their last event, and the
		// events those never got: a failure of the delivery rows.
		var closedMu sync.Mutex
		closed, missed := 0, 0
		fail := func(err error) {
			errMu.Lock()
			if watchErr == nil {
				watchErr = err
			}
			errMu.Unlock()
		}
		for w, cs := range watchers {
			wi, err := cs.CoreV1().ConfigMaps(ns).Watch(wctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
			if err != nil {
				return fmt.Errorf("watch %d: %w", w, err)
			}
			done.Add(1)
			go func() {
				defer wi.Stop()
				finished := false
				seen := 0
				for ev := range wi.ResultChan() {
					switch ev.Type {
					case watch.Added:
						name := ev.Object.(*corev1.ConfigMap).Name
						if name == "sentinel" {
							sentinelSeen <- struct{}{}
						} else if strings.HasPrefix(name, "ev-") {
							if seen++; seen == cfg.events {
								doneAt[w] = time.Now()
								finished = true
								done.Done()
							}
						}
					case watch.Error:
						fail(fmt.Errorf("watcher %d: error event: %v", w, ev.Object))
					}
				}
				if !finished {
					if wctx.Err() == nil {
						closedMu.Lock()
						closed++
						missed += cfg.events - seen
						closedMu.Unlock()
					}
					done.Done()
				}
			}()
		}

		// Every watch is registered once it has delivered the sentinel.
		admin := t.admin().CoreV1().ConfigMaps(ns)
		if _, err := admin.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "sentinel"}}, metav1.CreateOptions{}); err != nil {
			return err
		}
		timeout := time.After(time.Minute)
		for range cfg.watchers {
			select {
			case <-sentinelSeen:
			case <-timeout:
				return fmt.Errorf("not all %d watchers saw the sentinel within a minute", cfg.watchers)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		logf("%s: %d watches established", t.name, cfg.watchers)

		start := time.Now()
		b := budget{ops: cfg.events}
		created := runClients(ctx, len(creators), b, func(ctx context.Context, c, i int) (bool, error) {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ev-%d-%d", c, i)}, Data: map[string]string{"i": fmt.Sprint(i)}}
			_, err := creators[c].CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
			return false, err
		})
		createdAt := time.Now()
		rec.stats(fmt.Sprintf("create (%d clients)", len(creators)), b, created)
		if created.Errors > 0 {
			return fmt.Errorf("%d creates failed, e.g. %s", created.Errors, created.ErrorSamples[0])
		}
		allDone := make(chan struct{})
		go func() { done.Wait(); close(allDone) }()
		select {
		case <-allDone:
		case <-time.After(2 * time.Minute):
			return fmt.Errorf("not all watchers saw %d events within 2 minutes", cfg.events)
		case <-ctx.Done():
			return ctx.Err()
		}
		errMu.Lock()
		err = watchErr
		errMu.Unlock()
		if err != nil {
			return err
		}
		rec.set("watches closed by the server", "count", float64(closed))
		rec.set("events not delivered", "count", float64(missed))
		if closed > 0 {
			reason := fmt.Sprintf("%d of %d watches closed, %d events not delivered", closed, cfg.watchers, missed)
			rec.fail("first create → last watcher saw last event", "ms", reason)
			rec.fail("first create → median watcher saw last event", "ms", reason)
			return nil
		}
		var delivered []float64
		for _, at := range doneAt {
			delivered = append(delivered, ms(at.Sub(start)))
		}
		last := slices.Max(delivered)
		rec.set("first create → last watcher saw last event", "ms", last)
		rec.set("first create → median watcher saw last event", "ms", median(delivered))
		logf("%s: creates: %s; last watcher done after %.0f ms (median %.0f ms, %.0f ms after the last create)",
			t.name, created, last, median(delivered), last-ms(createdAt.Sub(start)))
		return nil
	}}
}
