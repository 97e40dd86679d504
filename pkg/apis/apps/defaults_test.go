package apps_test

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

// The expected objects are what an upstream v1.37.2 kube-apiserver returns
// for the same input (`kubectl create --dry-run=server`).

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

// workload frames a table of one apps kind: every document is object name
// of that kind, selecting app=x, with template in and templateSpec out; a
// row gives the other spec fields.
func workload(kind, name string) apitesting.Frame {
	return apitesting.Frame{
		Head:     fmt.Sprintf("apiVersion: apps/v1\nkind: %s\nmetadata: {name: %s}\nspec:\n  selector: {matchLabels: {app: x}}\n", kind, name),
		InTail:   "  template:" + template,
		WantTail: "  template:" + templateSpec,
	}
}

func TestDeploymentDefaults(t *testing.T) {
	apitesting.RunDefaultingCases(t, workload("Deployment", "d").Cases([]apitesting.DefaultingCase{{
		Name: "minimal",
		Want: `
  replicas: 1
  strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 25%, maxSurge: 25%}}
  revisionHistoryLimit: 10
  progressDeadlineSeconds: 600
`,
	}, {
		Name: "recreate has no rolling update",
		In: `
  strategy: {type: Recreate}
`,
		Want: `
  replicas: 1
  strategy: {type: Recreate}
  revisionHistoryLimit: 10
  progressDeadlineSeconds: 600
`,
	}, {
		Name: "explicit values kept",
		In: `
  replicas: 0
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 2}}
  revisionHistoryLimit: 0
  progressDeadlineSeconds: 30
`,
		Want: `
  replicas: 0
  strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 25%, maxSurge: 2}}
  revisionHistoryLimit: 0
  progressDeadlineSeconds: 30
`,
	}}))
}

func TestReplicaSetDefaults(t *testing.T) {
	apitesting.RunDefaultingCases(t, workload("ReplicaSet", "rs").Cases([]apitesting.DefaultingCase{{
		Name: "minimal",
		Want: `
  replicas: 1
`,
	}, {
		Name: "zero replicas kept",
		In: `
  replicas: 0
`,
		Want: `
  replicas: 0
`,
	}}))
}

func TestStatefulSetDefaults(t *testing.T) {
	apitesting.RunDefaultingCases(t, workload("StatefulSet", "ss").Cases([]apitesting.DefaultingCase{{
		Name: "minimal with claim templates",
		In: `
  serviceName: ss
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`,
		Want: `
  serviceName: ss
  replicas: 1
  podManagementPolicy: OrderedReady
  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 0, maxUnavailable: 1}}
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Retain, whenScaled: Retain}
  revisionHistoryLimit: 10
  volumeClaimTemplates:
  - apiVersion: v1 # written by upstream's apps/v1 conversion
    kind: PersistentVolumeClaim
    metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}, volumeMode: Filesystem}
    status: {phase: Pending}
`,
	}, {
		Name: "explicit rolling update type gets no rollingUpdate",
		In: `
  updateStrategy: {type: RollingUpdate}
`,
		Want: `
  replicas: 1
  podManagementPolicy: OrderedReady
  updateStrategy: {type: RollingUpdate}
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Retain, whenScaled: Retain}
  revisionHistoryLimit: 10
`,
	}, {
		Name: "explicit values kept",
		In: `
  replicas: 3
  podManagementPolicy: Parallel
  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete}
  revisionHistoryLimit: 1
`,
		Want: `
  replicas: 3
  podManagementPolicy: Parallel
  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2, maxUnavailable: 1}}
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Retain}
  revisionHistoryLimit: 1
`,
	}, {
		Name: "on delete",
		In: `
  updateStrategy: {type: OnDelete}
`,
		Want: `
  replicas: 1
  podManagementPolicy: OrderedReady
  updateStrategy: {type: OnDelete}
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Retain, whenScaled: Retain}
  revisionHistoryLimit: 10
`,
	}}))
}

func TestDaemonSetDefaults(t *testing.T) {
	const explicit = `
  updateStrategy: {type: OnDelete}
  revisionHistoryLimit: 2
`
	apitesting.RunDefaultingCases(t, workload("DaemonSet", "ds").Cases([]apitesting.DefaultingCase{{
		Name: "minimal",
		Want: `
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1, maxSurge: 0}}
  revisionHistoryLimit: 10
`,
	}, {
		Name: "on delete and explicit values",
		In:   explicit,
		Want: explicit,
	}, {
		Name: "partial rolling update",
		In: `
  updateStrategy: {rollingUpdate: {maxUnavailable: 10%}}
`,
		Want: `
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 10%, maxSurge: 0}}
  revisionHistoryLimit: 10
`,
	}}))
}

// Every apps kind has a defaulter, and its list defaults each item the same
// way.
func TestAppsListsDefaultTheirItems(t *testing.T) {
	apitesting.ExpectDefaultersRegistered(t, &appsv1.Deployment{}, &appsv1.ReplicaSet{}, &appsv1.StatefulSet{}, &appsv1.DaemonSet{})
}
