package config

import (
	"strings"
	"testing"

	configv1 "k8s.io/kube-scheduler/config/v1"
)

func names(ps []configv1.Plugin) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

func TestDefaults(t *testing.T) {
	cfg, err := Decode([]byte("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"))
	if err != nil {
		t.Fatal(err)
	}
	if *cfg.Parallelism != 16 || *cfg.PercentageOfNodesToScore != 0 || *cfg.PodInitialBackoffSeconds != 1 || *cfg.PodMaxBackoffSeconds != 10 {
		t.Errorf("scalars: parallelism %d pct %d backoff %d/%d", *cfg.Parallelism, *cfg.PercentageOfNodesToScore, *cfg.PodInitialBackoffSeconds, *cfg.PodMaxBackoffSeconds)
	}
	if cfg.LeaderElection.ResourceName != "kube-scheduler" || cfg.LeaderElection.ResourceNamespace != "kube-system" || !*cfg.LeaderElection.LeaderElect {
		t.Errorf("leader election: %+v", cfg.LeaderElection)
	}
	if cfg.ClientConnection.QPS != 50 || cfg.ClientConnection.Burst != 100 {
		t.Errorf("client connection: %+v", cfg.ClientConnection)
	}
	if len(cfg.Profiles) != 1 || *cfg.Profiles[0].SchedulerName != "default-scheduler" {
		t.Fatalf("profiles: %+v", cfg.Profiles)
	}
	p := cfg.Profiles[0]
	got := strings.Join(names(p.Plugins.MultiPoint.Enabled), ",")
	want := "SchedulingGates,PrioritySort,NodeName,NodeUnschedulable,TaintToleration,NodeAffinity,NodePorts,NodeResourcesFit,VolumeRestrictions,NodeVolumeLimits,VolumeBinding,VolumeZone,PodTopologySpread,InterPodAffinity,DynamicResources,DefaultPreemption,NodeResourcesBalancedAllocation,ImageLocality,DefaultBinder,NodeDeclaredFeatures"
	if got != want {
		t.Errorf("multiPoint:\n got %s\nwant %s", got, want)
	}
	weights := map[string]int32{}
	for _, pl := range p.Plugins.MultiPoint.Enabled {
		if pl.Weight != nil {
			weights[pl.Name] = *pl.Weight
		}
	}
	if weights["TaintToleration"] != 3 || weights["NodeAffinity"] != 2 || weights["PodTopologySpread"] != 2 || weights["InterPodAffinity"] != 2 || weights["NodeResourcesFit"] != 1 || weights["ImageLocality"] != 1 {
		t.Errorf("weights: %v", weights)
	}
	args := map[string]any{}
	for _, pc := range p.PluginConfig {
		args[pc.Name] = pc.Args.Object
	}
	if len(args) != 8 {
		t.Errorf("pluginConfig has %d entries, want the 8 plugins with args: %v", len(args), args)
	}
	fit := args["NodeResourcesFit"].(*configv1.NodeResourcesFitArgs)
	if fit.ScoringStrategy.Type != configv1.LeastAllocated || len(fit.ScoringStrategy.Resources) != 2 {
		t.Errorf("NodeResourcesFitArgs: %+v", fit.ScoringStrategy)
	}
	if pre := args["DefaultPreemption"].(*configv1.DefaultPreemptionArgs); *pre.MinCandidateNodesPercentage != 10 || *pre.MinCandidateNodesAbsolute != 100 {
		t.Errorf("DefaultPreemptionArgs: %+v", pre)
	}
	if pts := args["PodTopologySpread"].(*configv1.PodTopologySpreadArgs); pts.DefaultingType != configv1.SystemDefaulting {
		t.Errorf("PodTopologySpreadArgs: %+v", pts)
	}
	if vb := args["VolumeBinding"].(*configv1.VolumeBindingArgs); *vb.BindTimeoutSeconds != 600 || len(vb.Shape) != 2 {
		t.Errorf("VolumeBindingArgs: %+v", vb)
	}
}

// TestMerge: disabling drops defaults, re-enabling replaces in place,
// extra plugins are appended, args given are defaulted.
func TestMerge(t *testing.T) {
	cfg, err := Decode([]byte(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 50
profiles:
- schedulerName: a
  plugins:
    multiPoint:
      enabled:
      - name: NodeAffinity
        weight: 7
      - name: Custom
      disabled:
      - name: ImageLocality
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
- schedulerName: b
  plugins:
    multiPoint:
      disabled:
      - name: "*"
      enabled:
      - name: PrioritySort
`))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Profiles[0].Plugins.MultiPoint.Enabled
	got := strings.Join(names(a), ",")
	if strings.Contains(got, "ImageLocality") || !strings.HasSuffix(got, "NodeDeclaredFeatures,Custom") || !strings.Contains(got, "TaintToleration,NodeAffinity,NodePorts") {
		t.Errorf("profile a: %s", got)
	}
	for _, p := range a {
		if p.Name == "NodeAffinity" && *p.Weight != 7 {
			t.Errorf("NodeAffinity weight %d", *p.Weight)
		}
	}
	for _, pc := range cfg.Profiles[0].PluginConfig {
		if pc.Name == "NodeResourcesFit" {
			fit := pc.Args.Object.(*configv1.NodeResourcesFitArgs)
			if fit.ScoringStrategy.Type != configv1.MostAllocated || len(fit.ScoringStrategy.Resources) != 2 {
				t.Errorf("fit args %+v", fit.ScoringStrategy)
			}
		}
	}
	if got := strings.Join(names(cfg.Profiles[1].Plugins.MultiPoint.Enabled), ","); got != "PrioritySort" {
		t.Errorf("profile b: %s", got)
	}
	if len(cfg.Profiles[1].PluginConfig) != 0 {
		t.Errorf("profile b has args for disabled plugins: %v", cfg.Profiles[1].PluginConfig)
	}
}

func TestDecodeErrors(t *testing.T) {
	const head = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
	for _, tc := range []struct{ name, in, want string }{
		{"unknown field", head + "parallelizm: 3\n", `unknown field "parallelizm"`},
		{"duplicate field", head + "parallelism: 3\nparallelism: 4\n", `"parallelism" already set`},
		{"unknown args field", head + "profiles:\n- pluginConfig:\n  - name: DefaultPreemption\n    args:\n      minCandidateNodes: 3\n", `decoding .profiles[0].pluginConfig[0]: strict decoding error: decoding args for plugin DefaultPreemption: strict decoding error: unknown field "minCandidateNodes"`},
		{"old version", "apiVersion: kubescheduler.config.k8s.io/v1beta3\nkind: KubeSchedulerConfiguration\n", `no kind "KubeSchedulerConfiguration" is registered for version "kubescheduler.config.k8s.io/v1beta3"`},
		{"no kind", "parallelism: 3\n", "Object 'Kind' is missing"},
		{"parallelism", head + "parallelism: 0\n", "parallelism: Invalid value: 0: should be an integer value greater than zero"},
		{"percentage", head + "percentageOfNodesToScore: 101\n", "percentageOfNodesToScore: Invalid value: 101: not in valid range [0-100]"},
		{"backoff", head + "podInitialBackoffSeconds: 5\npodMaxBackoffSeconds: 2\n", "podMaxBackoffSeconds: Invalid value: 2: must be greater than or equal to PodInitialBackoffSeconds"},
		{"duplicate profile", head + "profiles:\n- schedulerName: x\n- schedulerName: x\n", `profiles[1].schedulerName: Duplicate value: "profiles[0].schedulerName"`},
		{"empty profile name", head + "profiles:\n- schedulerName: x\n- schedulerName: \"\"\n", "profiles[1].schedulerName: Required value"},
		{"queue sort differs", head + "profiles:\n- schedulerName: x\n- schedulerName: z\n  plugins:\n    queueSort:\n      enabled:\n      - name: Other\n", "profiles[1].plugins.queueSort: Invalid value"},
		{"fit strategy", head + "profiles:\n- pluginConfig:\n  - name: NodeResourcesFit\n    args:\n      scoringStrategy:\n        type: Random\n", `profiles[0].pluginConfig[0].args.scoringStrategy.type: Unsupported value: "Random"`},
		{"preemption args", head + "profiles:\n- pluginConfig:\n  - name: DefaultPreemption\n    args:\n      minCandidateNodesPercentage: 0\n      minCandidateNodesAbsolute: 0\n", "cannot be zero at the same time as minCandidateNodesAbsolute"},
		{"removed plugin", head + "profiles:\n- plugins:\n    filter:\n      enabled:\n      - name: EBSLimits\n", `profiles[0].plugins.filter.enabled[0]: Invalid value: "EBSLimits": was invalid in version`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestDecodeJSON(t *testing.T) {
	cfg, err := Decode([]byte(`{"apiVersion":"kubescheduler.config.k8s.io/v1","kind":"KubeSchedulerConfiguration","podMaxBackoffSeconds":20}`))
	if err != nil {
		t.Fatal(err)
	}
	if *cfg.PodMaxBackoffSeconds != 20 {
		t.Errorf("podMaxBackoffSeconds %d", *cfg.PodMaxBackoffSeconds)
	}
}
