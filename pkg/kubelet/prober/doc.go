// Package prober runs the liveness, readiness and startup probes of a
// node's containers as upstream kubelet's prober does (httpGet, tcpSocket,
// exec and grpc; initialDelaySeconds, periodSeconds, timeoutSeconds,
// successThreshold, failureThreshold; the startup probe gating the
// others), and keeps their results for the kubelet.
//
// Wiring it into a kubelet:
//
//	m := prober.NewManager(prober.Options{
//		Execer:   criRuntime,  // ExecSync of the CRI runtime
//		Recorder: recorder,    // Unhealthy / ProbeWarning events
//		OnUpdate: func(u prober.Update) { queue.Add(keyOf(u.PodUID)) },
//	})
//	// each pod sync:
//	m.AddPod(pod)                   // idempotent; starts the pod's probes
//	m.SetRuntimeStatus(rs)          // the runtime's view: IDs, states, IPs
//	for each running container c of rs:
//		if k, ok := m.ContainerToKill(pod, c.Name, c.ID); ok {
//			// kill c within k.GracePeriod; Killing event with k.Message;
//			// start it again if k.Restart (restartCount+1)
//		}
//	status.Generate(pod, rs, status.Options{Ready: m.Ready, ...})
//	// (or m.UpdatePodStatus(pod, &apiStatus) for Started and Ready)
//	// pod terminating: m.StopLivenessAndStartup(pod.UID)
//	// pod gone from the node: m.RemovePod(pod.UID)
//
// Results are kept by container instance (ID): a new instance (a
// restart) starts with readiness Failure, liveness Success and startup
// Unknown until probed, as upstream's results manager. An instance that
// was running before the kubelet (re)started keeps its Started and, until
// its first probe, its pod's readiness, as upstream.
//
// Metrics: prober_probe_total and prober_probe_duration_seconds with
// upstream's names and labels, registered in legacyregistry (Collectors
// gives them for a /metrics/probes registry as upstream serves them).
package prober
