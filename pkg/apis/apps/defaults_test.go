package apps_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/pkg/apis"
)

// The expected objects are what an upstream v1.37.2 kube-apiserver returns
// for the same input (`kubectl create --dry-run=server`).

func decode(t *testing.T, doc string, defaulting bool) runtime.Object {
	t.Helper()
	d := apis.Codecs.UniversalDeserializer()
	if defaulting {
		d = apis.Codecs.UniversalDecoder()
	}
	obj, _, err := d.Decode([]byte(doc), nil, nil)
	if err != nil {
		t.Fatalf("decoding %s: %v", doc, err)
	}
	return obj
}

func wire(t *testing.T, obj runtime.Object) map[string]interface{} {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]interface{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "apiVersion")
	delete(m, "kind")
	return m
}

type defaultingCase struct{ name, in, want string }

func runDefaultingCases(t *testing.T, cases []defaultingCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := decode(t, tc.in, true)
			if d := cmp.Diff(wire(t, decode(t, tc.want, false)), wire(t, got)); d != "" {
				t.Errorf("defaulted object differs from upstream's (-want +got):\n%s", d)
			}
			again := got.DeepCopyObject()
			apis.Scheme.Default(again)
			if d := cmp.Diff(wire(t, got), wire(t, again)); d != "" {
				t.Errorf("defaulting twice differs from once (-once +twice):\n%s", d)
			}
		})
	}
}

// template is a minimal pod template and templateSpec its defaulted form: a
// template gets the pod spec defaults but none of the Pod-only ones
// (enableServiceLinks, requests from limits).
const (
	template = `
    metadata: {labels: {app: x}}
    spec:
      containers: [{name: a, image: nginx, resources: {limits: {cpu: "0.0001"}}, livenessProbe: {tcpSocket: {port: 80}}}]
`
	templateSpec = `
    metadata: {labels: {app: x}}
    spec:
      containers:
      - name: a
        image: nginx
        imagePullPolicy: Always
        resources: {limits: {cpu: 1m}}
        livenessProbe: {tcpSocket: {port: 80}, timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3}
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      restartPolicy: Always
      terminationGracePeriodSeconds: 30
      dnsPolicy: ClusterFirst
      securityContext: {}
      schedulerName: default-scheduler
`
)

func TestDeploymentDefaults(t *testing.T) {
	runDefaultingCases(t, []defaultingCase{{
		name: "minimal",
		in: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  selector: {matchLabels: {app: x}}
  template:` + template,
		want: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  replicas: 1
  selector: {matchLabels: {app: x}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 25%, maxSurge: 25%}}
  revisionHistoryLimit: 10
  progressDeadlineSeconds: 600
  template:` + templateSpec,
	}, {
		name: "recreate has no rolling update",
		in: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  selector: {matchLabels: {app: x}}
  strategy: {type: Recreate}
  template:` + template,
		want: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  replicas: 1
  selector: {matchLabels: {app: x}}
  strategy: {type: Recreate}
  revisionHistoryLimit: 10
  progressDeadlineSeconds: 600
  template:` + templateSpec,
	}, {
		name: "explicit values kept",
		in: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  replicas: 0
  selector: {matchLabels: {app: x}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 2}}
  revisionHistoryLimit: 0
  progressDeadlineSeconds: 30
  template:` + template,
		want: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  replicas: 0
  selector: {matchLabels: {app: x}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 25%, maxSurge: 2}}
  revisionHistoryLimit: 0
  progressDeadlineSeconds: 30
  template:` + templateSpec,
	}})
}

func TestReplicaSetDefaults(t *testing.T) {
	runDefaultingCases(t, []defaultingCase{{
		name: "minimal",
		in: `
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs}
spec:
  selector: {matchLabels: {app: x}}
  template:` + template,
		want: `
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs}
spec:
  replicas: 1
  selector: {matchLabels: {app: x}}
  template:` + templateSpec,
	}, {
		name: "zero replicas kept",
		in: `
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs}
spec:
  replicas: 0
  selector: {matchLabels: {app: x}}
  template:` + template,
		want: `
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs}
spec:
  replicas: 0
  selector: {matchLabels: {app: x}}
  template:` + templateSpec,
	}})
}

func TestStatefulSetDefaults(t *testing.T) {
	runDefaultingCases(t, []defaultingCase{{
		name: "minimal with claim templates",
		in: `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ss}
spec:
  serviceName: ss
  selector: {matchLabels: {app: x}}
  template:` + template + `
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`,
		want: `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ss}
spec:
  serviceName: ss
  replicas: 1
  podManagementPolicy: OrderedReady
  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 0, maxUnavailable: 1}}
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Retain, whenScaled: Retain}
  revisionHistoryLimit: 10
  selector: {matchLabels: {app: x}}
  template:` + templateSpec + `
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}, volumeMode: Filesystem}
    status: {phase: Pending}
`,
	}, {
		name: "explicit rolling update type gets no rollingUpdate",
		in: `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ss}
spec:
  selector: {matchLabels: {app: x}}
  updateStrategy: {type: RollingUpdate}
  template:` + template,
		want: `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ss}
spec:
  replicas: 1
  podManagementPolicy: OrderedReady
  updateStrategy: {type: RollingUpdate}
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Retain, whenScaled: Retain}
  revisionHistoryLimit: 10
  selector: {matchLabels: {app: x}}
  template:` + templateSpec,
	}, {
		name: "explicit values kept",
		in: `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ss}
spec:
  replicas: 3
  podManagementPolicy: Parallel
  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete}
  revisionHistoryLimit: 1
  selector: {matchLabels: {app: x}}
  template:` + template,
		want: `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ss}
spec:
  replicas: 3
  podManagementPolicy: Parallel
  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2, maxUnavailable: 1}}
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Retain}
  revisionHistoryLimit: 1
  selector: {matchLabels: {app: x}}
  template:` + templateSpec,
	}, {
		name: "on delete",
		in: `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ss}
spec:
  selector: {matchLabels: {app: x}}
  updateStrategy: {type: OnDelete}
  template:` + template,
		want: `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ss}
spec:
  replicas: 1
  podManagementPolicy: OrderedReady
  updateStrategy: {type: OnDelete}
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Retain, whenScaled: Retain}
  revisionHistoryLimit: 10
  selector: {matchLabels: {app: x}}
  template:` + templateSpec,
	}})
}

func TestDaemonSetDefaults(t *testing.T) {
	runDefaultingCases(t, []defaultingCase{{
		name: "minimal",
		in: `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds}
spec:
  selector: {matchLabels: {app: x}}
  template:` + template,
		want: `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds}
spec:
  selector: {matchLabels: {app: x}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1, maxSurge: 0}}
  revisionHistoryLimit: 10
  template:` + templateSpec,
	}, {
		name: "on delete and explicit values",
		in: `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds}
spec:
  selector: {matchLabels: {app: x}}
  updateStrategy: {type: OnDelete}
  revisionHistoryLimit: 2
  template:` + template,
		want: `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds}
spec:
  selector: {matchLabels: {app: x}}
  updateStrategy: {type: OnDelete}
  revisionHistoryLimit: 2
  template:` + templateSpec,
	}, {
		name: "partial rolling update",
		in: `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds}
spec:
  selector: {matchLabels: {app: x}}
  updateStrategy: {rollingUpdate: {maxUnavailable: 10%}}
  template:` + template,
		want: `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds}
spec:
  selector: {matchLabels: {app: x}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 10%, maxSurge: 0}}
  revisionHistoryLimit: 10
  template:` + templateSpec,
	}})
}

func TestAppsListsDefaultTheirItems(t *testing.T) {
	for _, sample := range []runtime.Object{&appsv1.Deployment{}, &appsv1.ReplicaSet{}, &appsv1.StatefulSet{}, &appsv1.DaemonSet{}} {
		gvks, _, err := apis.Scheme.ObjectKinds(sample)
		if err != nil {
			t.Fatal(err)
		}
		gvk := gvks[0]
		one := sample.DeepCopyObject()
		apis.Scheme.Default(one)
		if d := cmp.Diff(wire(t, sample), wire(t, one)); d == "" {
			t.Errorf("%s has no defaulter", gvk.Kind)
		}
		list, err := apis.Scheme.New(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err != nil {
			t.Fatal(err)
		}
		if err := meta.SetList(list, []runtime.Object{sample.DeepCopyObject(), sample.DeepCopyObject()}); err != nil {
			t.Fatal(err)
		}
		apis.Scheme.Default(list)
		items, err := meta.ExtractList(list)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range items {
			if d := cmp.Diff(wire(t, one), wire(t, item)); d != "" {
				t.Errorf("%sList does not default its items (-want +got):\n%s", gvk.Kind, d)
			}
		}
	}
}
