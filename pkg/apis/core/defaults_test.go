package core_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/pkg/apis"
	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

// The expected objects below are what an upstream v1.37.2 kube-apiserver
// returns for the same input (`kubectl create --dry-run=server -o yaml`),
// less what its REST strategies add on create (pod status phase/qosClass,
// service cluster IPs, IP families and node ports, the namespace finalizer).

const digest = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// pod frames a table of Pods named p.
var pod = apitesting.Frame{Head: "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"}

// podSpecDefaults are the pod spec fields every Pod without them gets.
const podSpecDefaults = `  restartPolicy: Always
  terminationGracePeriodSeconds: 30
  dnsPolicy: ClusterFirst
  securityContext: {}
  schedulerName: default-scheduler
  enableServiceLinks: true
`

func TestPodDefaults(t *testing.T) {
	apitesting.RunDefaultingCases(t, pod.Cases([]apitesting.DefaultingCase{{
		Name: "minimal",
		In: `
spec:
  containers: [{name: a, image: nginx}]
`,
		Want: `
spec:
  containers:
  - name: a
    image: nginx
    imagePullPolicy: Always
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
` + podSpecDefaults,
	}, {
		Name: "containers probes ports env and resources",
		In: `
spec:
  serviceAccount: legacy
  terminationGracePeriodSeconds: -5
  initContainers:
  - name: init
    image: busybox:1.36
    ports: [{containerPort: 81}]
    resources: {limits: {cpu: "0.0001", memory: 64Mi}}
  containers:
  - name: a
    image: nginx:latest
    ports: [{containerPort: 80}, {containerPort: 53, protocol: UDP}]
    env:
    - {name: X, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: "Y", value: "y"}
    resources: {limits: {cpu: 500m, memory: 128Mi}, requests: {memory: 100Mi}}
    livenessProbe: {httpGet: {port: 80}}
    readinessProbe: {grpc: {port: 9000}}
    startupProbe: {exec: {command: ["true"]}, periodSeconds: 3}
    lifecycle: {preStop: {httpGet: {port: 80}}, postStart: {exec: {command: [x]}}}
  ephemeralContainers:
  - name: debug
    image: busybox
    env: [{name: Z, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}]
    resources: {limits: {cpu: 100m}}
status:
  podIP: 10.0.0.1
`,
		Want: `
spec:
  serviceAccount: legacy
  serviceAccountName: legacy
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: init
    image: busybox:1.36
    imagePullPolicy: IfNotPresent
    ports: [{containerPort: 81, protocol: TCP}]
    resources:
      limits: {cpu: 1m, memory: 64Mi}
      requests: {cpu: 1m, memory: 64Mi}
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
  containers:
  - name: a
    image: nginx:latest
    imagePullPolicy: Always
    ports: [{containerPort: 80, protocol: TCP}, {containerPort: 53, protocol: UDP}]
    env:
    - {name: X, valueFrom: {fieldRef: {apiVersion: v1, fieldPath: metadata.name}}}
    - {name: "Y", value: "y"}
    resources:
      limits: {cpu: 500m, memory: 128Mi}
      requests: {cpu: 500m, memory: 100Mi}
    livenessProbe:
      httpGet: {path: /, port: 80, scheme: HTTP}
      timeoutSeconds: 1
      periodSeconds: 10
      successThreshold: 1
      failureThreshold: 3
    readinessProbe:
      grpc: {port: 9000, service: ""}
      timeoutSeconds: 1
      periodSeconds: 10
      successThreshold: 1
      failureThreshold: 3
    startupProbe:
      exec: {command: ["true"]}
      timeoutSeconds: 1
      periodSeconds: 3
      successThreshold: 1
      failureThreshold: 3
    lifecycle:
      preStop: {httpGet: {path: /, port: 80, scheme: HTTP}}
      postStart: {exec: {command: [x]}}
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
  ephemeralContainers:
  - name: debug
    image: busybox
    imagePullPolicy: Always
    env: [{name: Z, valueFrom: {fieldRef: {apiVersion: v1, fieldPath: spec.nodeName}}}]
    resources: {limits: {cpu: 100m}}
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
  restartPolicy: Always
  dnsPolicy: ClusterFirst
  securityContext: {}
  schedulerName: default-scheduler
  enableServiceLinks: true
status:
  podIP: 10.0.0.1
  podIPs: [{ip: 10.0.0.1}]
`,
	}, {
		Name: "image pull policy follows the tag",
		In: `
spec:
  containers:
  - {name: c1, image: "nginx:1.25"}
  - {name: c2, image: "nginx@` + digest + `"}
  - {name: c3, image: "nginx:latest@` + digest + `"}
  - {name: c4, image: "localhost:5000/foo"}
  - {name: c5, image: "registry.example.com/team/app:latest"}
  - {name: c6, image: "Nginx"}
  - {name: c7, image: "nginx@sha256:abc"}
  - {name: c8, image: "nginx:LATEST"}
  - {name: c9, image: "index.docker.io/nginx"}
  - {name: c10, image: "UPPER.example.com/app"}
  - {name: c11, image: "registry.example.com/Team/app"}
  - {name: c12, image: "[::1]:5000/foo"}
  - {name: c13, image: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}
  - {name: c14, image: "foo:bar:baz"}
`,
		Want: `
spec:
  containers:
  - {name: c1, image: "nginx:1.25", imagePullPolicy: IfNotPresent, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
  - {name: c2, image: "nginx@` + digest + `", imagePullPolicy: IfNotPresent, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
  - {name: c3, image: "nginx:latest@` + digest + `", imagePullPolicy: Always, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
  - {name: c4, image: "localhost:5000/foo", imagePullPolicy: Always, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
  - {name: c5, image: "registry.example.com/team/app:latest", imagePullPolicy: Always, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
  - {name: c6, image: "Nginx", imagePullPolicy: IfNotPresent, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
  - {name: c7, image: "nginx@sha256:abc", imagePullPolicy: IfNotPresent, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
  - {name: c8, image: "nginx:LATEST", imagePullPolicy: IfNotPresent, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
  - {name: c9, image: "index.docker.io/nginx", imagePullPolicy: Always, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
  - {name: c10, image: "UPPER.example.com/app", imagePullPolicy: Always, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
  - {name: c11, image: "registry.example.com/Team/app", imagePullPolicy: IfNotPresent, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
  - {name: c12, image: "[::1]:5000/foo", imagePullPolicy: Always, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
  - {name: c13, image: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", imagePullPolicy: IfNotPresent, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
  - {name: c14, image: "foo:bar:baz", imagePullPolicy: IfNotPresent, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
` + podSpecDefaults,
	}, {
		Name: "volumes",
		In: `
spec:
  containers: [{name: a, image: nginx:1.25}]
  volumes:
  - name: none
  - {name: secret, secret: {secretName: s}}
  - {name: secret-mode, secret: {secretName: s, defaultMode: 0400}}
  - {name: cm, configMap: {name: c}}
  - {name: dapi, downwardAPI: {items: [{path: "nm", fieldRef: {fieldPath: metadata.name}}]}}
  - name: projected
    projected:
      sources:
      - serviceAccountToken: {path: token}
      - downwardAPI: {items: [{path: "nm", fieldRef: {fieldPath: metadata.name}}]}
  - {name: host, hostPath: {path: /tmp}}
  - {name: empty, emptyDir: {}}
  - name: eph
    ephemeral: {volumeClaimTemplate: {spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}}
  - {name: img, image: {reference: "quay.io/foo/bar"}}
  - {name: img-tag, image: {reference: "quay.io/foo/bar:v2"}}
  - {name: iscsi, iscsi: {targetPortal: "1.2.3.4:3260", iqn: "iqn.2001-04.com.example:storage", lun: 0}}
  - {name: rbd, rbd: {monitors: [m], image: i}}
  - {name: azure, azureDisk: {diskName: d, diskURI: u}}
  - {name: scaleio, scaleIO: {gateway: g, system: s, secretRef: {name: s}}}
`,
		Want: `
spec:
  containers:
  - {name: a, image: nginx:1.25, imagePullPolicy: IfNotPresent, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
  volumes:
  - {name: none, emptyDir: {}}
  - {name: secret, secret: {secretName: s, defaultMode: 0644}}
  - {name: secret-mode, secret: {secretName: s, defaultMode: 0400}}
  - {name: cm, configMap: {name: c, defaultMode: 0644}}
  - {name: dapi, downwardAPI: {defaultMode: 0644, items: [{path: "nm", fieldRef: {apiVersion: v1, fieldPath: metadata.name}}]}}
  - name: projected
    projected:
      defaultMode: 0644
      sources:
      - serviceAccountToken: {path: token, expirationSeconds: 3600}
      - downwardAPI: {items: [{path: "nm", fieldRef: {apiVersion: v1, fieldPath: metadata.name}}]}
  - {name: host, hostPath: {path: /tmp, type: ""}}
  - {name: empty, emptyDir: {}}
  - name: eph
    ephemeral: {volumeClaimTemplate: {spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}, volumeMode: Filesystem}}}
  - {name: img, image: {reference: "quay.io/foo/bar", pullPolicy: Always}}
  - {name: img-tag, image: {reference: "quay.io/foo/bar:v2", pullPolicy: IfNotPresent}}
  - {name: iscsi, iscsi: {targetPortal: "1.2.3.4:3260", iqn: "iqn.2001-04.com.example:storage", lun: 0, iscsiInterface: default}}
  - {name: rbd, rbd: {monitors: [m], image: i, pool: rbd, user: admin, keyring: /etc/ceph/keyring}}
  - {name: azure, azureDisk: {diskName: d, diskURI: u, cachingMode: ReadWrite, fsType: ext4, readOnly: false, kind: Shared}}
  - {name: scaleio, scaleIO: {gateway: g, system: s, secretRef: {name: s}, storageMode: ThinProvisioned, fsType: xfs}}
` + podSpecDefaults,
	}, {
		Name: "host network ports and explicit values kept",
		In: `
spec:
  hostNetwork: true
  enableServiceLinks: false
  restartPolicy: Never
  dnsPolicy: Default
  schedulerName: other
  securityContext: {runAsUser: 1000}
  terminationGracePeriodSeconds: 5
  serviceAccountName: sa
  serviceAccount: ignored
  initContainers:
  - {name: i, image: busybox, ports: [{containerPort: 9090}]}
  containers:
  - name: a
    image: gcr.io/x/y:v1
    imagePullPolicy: Never
    terminationMessagePath: /x
    terminationMessagePolicy: FallbackToLogsOnError
    ports: [{containerPort: 8080}, {containerPort: 8081, hostPort: 9091, protocol: SCTP}]
    resources: {limits: {cpu: "1"}, requests: {cpu: 200m}}
    readinessProbe: {httpGet: {port: 80, path: /healthz, scheme: HTTPS}, timeoutSeconds: 5, periodSeconds: 7, successThreshold: 2, failureThreshold: 9}
status:
  podIP: 10.0.0.1
  podIPs: [{ip: 10.0.0.2}, {ip: "fd00::1"}]
`,
		Want: `
spec:
  hostNetwork: true
  enableServiceLinks: false
  restartPolicy: Never
  dnsPolicy: Default
  schedulerName: other
  securityContext: {runAsUser: 1000}
  terminationGracePeriodSeconds: 5
  serviceAccountName: sa
  serviceAccount: sa
  initContainers:
  - {name: i, image: busybox, imagePullPolicy: Always, ports: [{containerPort: 9090, hostPort: 9090, protocol: TCP}], terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
  containers:
  - name: a
    image: gcr.io/x/y:v1
    imagePullPolicy: Never
    terminationMessagePath: /x
    terminationMessagePolicy: FallbackToLogsOnError
    ports: [{containerPort: 8080, hostPort: 8080, protocol: TCP}, {containerPort: 8081, hostPort: 9091, protocol: SCTP}]
    resources: {limits: {cpu: "1"}, requests: {cpu: 200m}}
    readinessProbe: {httpGet: {port: 80, path: /healthz, scheme: HTTPS}, timeoutSeconds: 5, periodSeconds: 7, successThreshold: 2, failureThreshold: 9}
status:
  podIP: 10.0.0.1
  podIPs: [{ip: 10.0.0.1}]
`,
	}, {
		Name: "pod-level resources are left to the strategy",
		In: `
spec:
  resources: {limits: {cpu: "0.0005"}}
  containers: [{name: a, image: nginx:1.25}]
status:
  podIPs: [{ip: 10.0.0.3}]
`,
		Want: `
spec:
  resources: {limits: {cpu: 1m}}
  containers:
  - {name: a, image: nginx:1.25, imagePullPolicy: IfNotPresent, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
` + podSpecDefaults + `
status:
  podIP: 10.0.0.3
  podIPs: [{ip: 10.0.0.3}]
`,
	}}))
}

// templateSpec is the defaulted form of a template holding one nginx:1.25
// container named a: templates get no Pod-only defaults (enableServiceLinks,
// requests from limits, host ports).
const templateSpec = `
    spec:
      hostNetwork: true
      containers:
      - name: a
        image: nginx:1.25
        imagePullPolicy: IfNotPresent
        ports: [{containerPort: 80, protocol: TCP}]
        resources: {limits: {cpu: 100m}}
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      restartPolicy: Always
      terminationGracePeriodSeconds: 30
      dnsPolicy: ClusterFirst
      securityContext: {}
      schedulerName: default-scheduler
`

func TestPodTemplateAndReplicationControllerDefaults(t *testing.T) {
	const template = `
    spec:
      hostNetwork: true
      containers: [{name: a, image: nginx:1.25, ports: [{containerPort: 80}], resources: {limits: {cpu: 100m}}}]
`
	apitesting.RunDefaultingCases(t, []apitesting.DefaultingCase{{
		Name: "pod template",
		In: `
apiVersion: v1
kind: PodTemplate
metadata: {name: pt}
template:
    metadata: {labels: {app: x}}` + template,
		Want: `
apiVersion: v1
kind: PodTemplate
metadata: {name: pt}
template:
    metadata: {labels: {app: x}}` + templateSpec,
	}, {
		Name: "replication controller takes selector and labels from its template",
		In: `
apiVersion: v1
kind: ReplicationController
metadata: {name: rc}
spec:
  template:
    metadata: {labels: {app: x}}` + template,
		Want: `
apiVersion: v1
kind: ReplicationController
metadata: {name: rc, labels: {app: x}}
spec:
  replicas: 1
  selector: {app: x}
  template:
    metadata: {labels: {app: x}}` + templateSpec,
	}, {
		Name: "replication controller keeps its own",
		In: `
apiVersion: v1
kind: ReplicationController
metadata: {name: rc, labels: {own: "1"}}
spec:
  replicas: 0
  selector: {app: x, tier: "y"}
  template:
    metadata: {labels: {app: x, tier: "y", more: z}}` + template,
		Want: `
apiVersion: v1
kind: ReplicationController
metadata: {name: rc, labels: {own: "1"}}
spec:
  replicas: 0
  selector: {app: x, tier: "y"}
  template:
    metadata: {labels: {app: x, tier: "y", more: z}}` + templateSpec,
	}, {
		Name: "replication controller without template",
		In: `
apiVersion: v1
kind: ReplicationController
metadata: {name: rc}
spec: {selector: {app: x}}
`,
		Want: `
apiVersion: v1
kind: ReplicationController
metadata: {name: rc}
spec: {selector: {app: x}, replicas: 1}
`,
	}})
}

// service frames a table of Services named s.
var service = apitesting.Frame{Head: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"}

func TestServiceDefaults(t *testing.T) {
	apitesting.RunDefaultingCases(t, service.Cases([]apitesting.DefaultingCase{{
		Name: "cluster IP",
		In: `
spec:
  selector: {app: x}
  ports: [{name: a, port: 80}, {name: b, port: 53, protocol: UDP, targetPort: dns}]
`,
		Want: `
spec:
  selector: {app: x}
  type: ClusterIP
  sessionAffinity: None
  internalTrafficPolicy: Cluster
  ports: [{name: a, port: 80, protocol: TCP, targetPort: 80}, {name: b, port: 53, protocol: UDP, targetPort: dns}]
`,
	}, {
		Name: "node port with client IP affinity",
		In: `
spec:
  type: NodePort
  sessionAffinity: ClientIP
  ports: [{port: 80, targetPort: 8080}]
`,
		Want: `
spec:
  type: NodePort
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 10800}}
  externalTrafficPolicy: Cluster
  internalTrafficPolicy: Cluster
  ports: [{port: 80, protocol: TCP, targetPort: 8080}]
`,
	}, {
		Name: "load balancer",
		In: `
spec:
  type: LoadBalancer
  ports: [{port: 443}]
status:
  loadBalancer: {ingress: [{ip: 1.2.3.4}, {hostname: lb.example.com}, {ip: 1.2.3.5, ipMode: Proxy}]}
`,
		Want: `
spec:
  type: LoadBalancer
  sessionAffinity: None
  externalTrafficPolicy: Cluster
  internalTrafficPolicy: Cluster
  allocateLoadBalancerNodePorts: true
  ports: [{port: 443, protocol: TCP, targetPort: 443}]
status:
  loadBalancer: {ingress: [{ip: 1.2.3.4, ipMode: VIP}, {hostname: lb.example.com}, {ip: 1.2.3.5, ipMode: Proxy}]}
`,
	}, {
		Name: "external name",
		In: `
spec: {type: ExternalName, externalName: example.com}
`,
		Want: `
spec: {type: ExternalName, externalName: example.com, sessionAffinity: None}
`,
	}, {
		Name: "external IPs and explicit values",
		In: `
spec:
  externalIPs: [1.2.3.4]
  externalTrafficPolicy: Local
  internalTrafficPolicy: Local
  sessionAffinity: None
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  ports: [{port: 80, targetPort: 0}]
`,
		Want: `
spec:
  type: ClusterIP
  externalIPs: [1.2.3.4]
  externalTrafficPolicy: Local
  internalTrafficPolicy: Local
  sessionAffinity: None
  ports: [{port: 80, protocol: TCP, targetPort: 80}]
`,
	}, {
		Name: "cluster IP with external IPs gets an external policy",
		In: `
spec: {externalIPs: [1.2.3.4], sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}}
`,
		Want: `
spec:
  type: ClusterIP
  externalIPs: [1.2.3.4]
  externalTrafficPolicy: Cluster
  internalTrafficPolicy: Cluster
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
`,
	}}))
}

func TestOtherCoreDefaults(t *testing.T) {
	apitesting.RunDefaultingCases(t, []apitesting.DefaultingCase{{
		Name: "secret",
		In:   `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}`,
		Want: `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque"}`,
	}, {
		Name: "secret keeps its type",
		In:   `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "kubernetes.io/tls"}`,
		Want: `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "kubernetes.io/tls"}`,
	}, {
		Name: "namespace",
		In:   `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns", "labels": {"a": "b"}}}`,
		Want: `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns", "labels": {"a": "b", "kubernetes.io/metadata.name": "ns"}}, "status": {"phase": "Active"}}`,
	}, {
		Name: "namespace label overrides a wrong value",
		In:   `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns", "labels": {"kubernetes.io/metadata.name": "other"}}, "status": {"phase": "Terminating"}}`,
		Want: `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns", "labels": {"kubernetes.io/metadata.name": "ns"}}, "status": {"phase": "Terminating"}}`,
	}, {
		Name: "namespace without a name yet",
		In:   `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"generateName": "ns-"}}`,
		Want: `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"generateName": "ns-"}, "status": {"phase": "Active"}}`,
	}, {
		Name: "node allocatable from capacity",
		In:   `{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "status": {"capacity": {"cpu": "0.0005", "memory": "1Gi"}}}`,
		Want: `{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "status": {"capacity": {"cpu": "1m", "memory": "1Gi"}, "allocatable": {"cpu": "1m", "memory": "1Gi"}}}`,
	}, {
		Name: "node keeps its allocatable",
		In:   `{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4"}, "allocatable": {"cpu": "3500m"}}}`,
		Want: `{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4"}, "allocatable": {"cpu": "3500m"}}}`,
	}, {
		Name: "persistent volume",
		In: `
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv}
spec: {capacity: {storage: 1Gi}, accessModes: [ReadWriteOnce], hostPath: {path: /tmp/pv}}
`,
		Want: `
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  hostPath: {path: /tmp/pv, type: ""}
  persistentVolumeReclaimPolicy: Retain
  volumeMode: Filesystem
status: {phase: Pending}
`,
	}, {
		Name: "persistent volume sources",
		In: `
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv}
spec: {persistentVolumeReclaimPolicy: Delete, volumeMode: Block, rbd: {monitors: [m], image: i}}
status: {phase: Bound}
`,
		Want: `
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv}
spec:
  persistentVolumeReclaimPolicy: Delete
  volumeMode: Block
  rbd: {monitors: [m], image: i, pool: rbd, user: admin, keyring: /etc/ceph/keyring}
status: {phase: Bound}
`,
	}, {
		Name: "persistent volume claim",
		In: `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: pvc}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: "1.0001k"}}}
`,
		Want: `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: pvc}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: "1000100m"}}, volumeMode: Filesystem}
status: {phase: Pending}
`,
	}, {
		Name: "endpoints",
		In: `
apiVersion: v1
kind: Endpoints
metadata: {name: ep}
subsets: [{addresses: [{ip: 10.1.2.3}], ports: [{name: a, port: 80}, {name: b, port: 53, protocol: UDP}]}]
`,
		Want: `
apiVersion: v1
kind: Endpoints
metadata: {name: ep}
subsets: [{addresses: [{ip: 10.1.2.3}], ports: [{name: a, port: 80, protocol: TCP}, {name: b, port: 53, protocol: UDP}]}]
`,
	}, {
		Name: "limit range",
		In: `
apiVersion: v1
kind: LimitRange
metadata: {name: lr}
spec:
  limits:
  - type: Container
    max: {cpu: "2", memory: 1Gi}
    min: {cpu: 10m, memory: 1Mi, ephemeral-storage: "0.0001"}
    default: {memory: 512Mi}
  - type: Pod
    max: {cpu: "4"}
`,
		Want: `
apiVersion: v1
kind: LimitRange
metadata: {name: lr}
spec:
  limits:
  - type: Container
    max: {cpu: "2", memory: 1Gi}
    min: {cpu: 10m, memory: 1Mi, ephemeral-storage: 1m}
    default: {cpu: "2", memory: 512Mi}
    defaultRequest: {cpu: "2", memory: 512Mi, ephemeral-storage: 1m}
  - type: Pod
    max: {cpu: "4"}
`,
	}, {
		Name: "resource quota",
		In: `
apiVersion: v1
kind: ResourceQuota
metadata: {name: rq}
spec: {hard: {cpu: "0.0011", pods: "10"}}
status: {used: {cpu: "0.00001"}}
`,
		Want: `
apiVersion: v1
kind: ResourceQuota
metadata: {name: rq}
spec: {hard: {cpu: 2m, pods: "10"}}
status: {used: {cpu: 1m}}
`,
	}, {
		Name: "no defaults: service account",
		In:   `{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}}`,
		Want: `{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}}`,
	}, {
		Name: "no defaults: event",
		In:   `{"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "R"}`,
		Want: `{"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "R"}`,
	}})
}

// A ConfigMap's data is defaulted to an empty map, which the wire does not
// show (omitempty): check the Go value, decoded, defaulted and in a list.
func TestConfigMapDataIsNeverNil(t *testing.T) {
	cm := apitesting.Defaulted(t, `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}`).(*corev1.ConfigMap)
	if cm.Data == nil {
		t.Error("upstream defaults a ConfigMap's data to an empty map")
	}
	one := &corev1.ConfigMap{}
	apis.Scheme.Default(one)
	if one.Data == nil {
		t.Error("ConfigMap has no defaulter")
	}
	for i, item := range apitesting.DefaultedListItems(t, &corev1.ConfigMap{}, 2) {
		if item.(*corev1.ConfigMap).Data == nil {
			t.Errorf("ConfigMapList does not default item %d", i)
		}
	}
}

func TestListDefaults(t *testing.T) {
	apitesting.RunDefaultingCases(t, []apitesting.DefaultingCase{{
		Name: "pod list",
		In: `
apiVersion: v1
kind: PodList
items:
- metadata: {name: a}
  spec: {containers: [{name: a, image: "nginx:1"}]}
- metadata: {name: b}
  spec: {restartPolicy: Never, containers: [{name: b, image: nginx}]}
`,
		Want: `
apiVersion: v1
kind: PodList
metadata: {}
items:
- metadata: {name: a}
  spec:
    containers: [{name: a, image: "nginx:1", imagePullPolicy: IfNotPresent, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}]
    restartPolicy: Always
    terminationGracePeriodSeconds: 30
    dnsPolicy: ClusterFirst
    securityContext: {}
    schedulerName: default-scheduler
    enableServiceLinks: true
- metadata: {name: b}
  spec:
    containers: [{name: b, image: nginx, imagePullPolicy: Always, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}]
    restartPolicy: Never
    terminationGracePeriodSeconds: 30
    dnsPolicy: ClusterFirst
    securityContext: {}
    schedulerName: default-scheduler
    enableServiceLinks: true
`,
	}, {
		Name: "secret list",
		In:   `{"apiVersion": "v1", "kind": "SecretList", "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}, "type": "Custom"}]}`,
		Want: `{"apiVersion": "v1", "kind": "SecretList", "metadata": {}, "items": [{"metadata": {"name": "a"}, "type": "Opaque"}, {"metadata": {"name": "b"}, "type": "Custom"}]}`,
	}})
}

// Every core kind with a defaulter upstream has one here, and its list
// defaults each item the same way (ConfigMap: TestConfigMapDataIsNeverNil).
func TestCoreDefaultersRegistered(t *testing.T) {
	q := resource.MustParse("0.0001")
	apitesting.ExpectDefaultersRegistered(t,
		&corev1.Pod{}, &corev1.PodTemplate{}, &corev1.ReplicationController{}, &corev1.Service{},
		&corev1.Secret{}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "n"}},
		&corev1.Node{Status: corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourceCPU: q}}},
		&corev1.PersistentVolume{}, &corev1.PersistentVolumeClaim{},
		&corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Ports: []corev1.EndpointPort{{Port: 1}}}}},
		&corev1.LimitRange{Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, Max: corev1.ResourceList{corev1.ResourceCPU: q}}}}},
		&corev1.ResourceQuota{Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceCPU: q}}},
	)
}
