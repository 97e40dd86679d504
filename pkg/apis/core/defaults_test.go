package core_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/pkg/apis"
)

// The expected objects below are what an upstream v1.37.2 kube-apiserver
// returns for the same input (`kubectl create --dry-run=server -o yaml`),
// less what its REST strategies add on create (pod status phase/qosClass,
// service cluster IPs, IP families and node ports, the namespace finalizer).

// defaulted decodes doc as the apiserver does: through the universal
// decoder, which runs the scheme's defaulters.
func defaulted(t *testing.T, doc string) runtime.Object {
	t.Helper()
	obj, _, err := apis.Codecs.UniversalDecoder().Decode([]byte(doc), nil, nil)
	if err != nil {
		t.Fatalf("decoding %s: %v", doc, err)
	}
	return obj
}

// literal decodes doc without defaulting.
func literal(t *testing.T, doc string) runtime.Object {
	t.Helper()
	obj, _, err := apis.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
	if err != nil {
		t.Fatalf("decoding %s: %v", doc, err)
	}
	return obj
}

// wire is obj as JSON would carry it, without its type meta.
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

type defaultingCase struct {
	name, in, want string
}

// runDefaultingCases checks that decoding in gives want, and that defaulting
// the result again changes nothing.
func runDefaultingCases(t *testing.T, cases []defaultingCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := defaulted(t, tc.in)
			if d := cmp.Diff(wire(t, literal(t, tc.want)), wire(t, got)); d != "" {
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

const digest = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestPodDefaults(t *testing.T) {
	runDefaultingCases(t, []defaultingCase{{
		name: "minimal",
		in: `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: a, image: nginx}]
`,
		want: `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: a
    image: nginx
    imagePullPolicy: Always
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
  restartPolicy: Always
  terminationGracePeriodSeconds: 30
  dnsPolicy: ClusterFirst
  securityContext: {}
  schedulerName: default-scheduler
  enableServiceLinks: true
`,
	}, {
		name: "containers probes ports env and resources",
		in: `
apiVersion: v1
kind: Pod
metadata: {name: p}
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
		want: `
apiVersion: v1
kind: Pod
metadata: {name: p}
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
		name: "image pull policy follows the tag",
		in: `
apiVersion: v1
kind: Pod
metadata: {name: p}
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
		want: `
apiVersion: v1
kind: Pod
metadata: {name: p}
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
  restartPolicy: Always
  terminationGracePeriodSeconds: 30
  dnsPolicy: ClusterFirst
  securityContext: {}
  schedulerName: default-scheduler
  enableServiceLinks: true
`,
	}, {
		name: "volumes",
		in: `
apiVersion: v1
kind: Pod
metadata: {name: p}
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
		want: `
apiVersion: v1
kind: Pod
metadata: {name: p}
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
  restartPolicy: Always
  terminationGracePeriodSeconds: 30
  dnsPolicy: ClusterFirst
  securityContext: {}
  schedulerName: default-scheduler
  enableServiceLinks: true
`,
	}, {
		name: "host network ports and explicit values kept",
		in: `
apiVersion: v1
kind: Pod
metadata: {name: p}
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
		want: `
apiVersion: v1
kind: Pod
metadata: {name: p}
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
		name: "pod-level resources are left to the strategy",
		in: `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  resources: {limits: {cpu: "0.0005"}}
  containers: [{name: a, image: nginx:1.25}]
status:
  podIPs: [{ip: 10.0.0.3}]
`,
		want: `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  resources: {limits: {cpu: 1m}}
  containers:
  - {name: a, image: nginx:1.25, imagePullPolicy: IfNotPresent, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
  restartPolicy: Always
  terminationGracePeriodSeconds: 30
  dnsPolicy: ClusterFirst
  securityContext: {}
  schedulerName: default-scheduler
  enableServiceLinks: true
status:
  podIP: 10.0.0.3
  podIPs: [{ip: 10.0.0.3}]
`,
	}})
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
	runDefaultingCases(t, []defaultingCase{{
		name: "pod template",
		in: `
apiVersion: v1
kind: PodTemplate
metadata: {name: pt}
template:
    metadata: {labels: {app: x}}` + template,
		want: `
apiVersion: v1
kind: PodTemplate
metadata: {name: pt}
template:
    metadata: {labels: {app: x}}` + templateSpec,
	}, {
		name: "replication controller takes selector and labels from its template",
		in: `
apiVersion: v1
kind: ReplicationController
metadata: {name: rc}
spec:
  template:
    metadata: {labels: {app: x}}` + template,
		want: `
apiVersion: v1
kind: ReplicationController
metadata: {name: rc, labels: {app: x}}
spec:
  replicas: 1
  selector: {app: x}
  template:
    metadata: {labels: {app: x}}` + templateSpec,
	}, {
		name: "replication controller keeps its own",
		in: `
apiVersion: v1
kind: ReplicationController
metadata: {name: rc, labels: {own: "1"}}
spec:
  replicas: 0
  selector: {app: x, tier: "y"}
  template:
    metadata: {labels: {app: x, tier: "y", more: z}}` + template,
		want: `
apiVersion: v1
kind: ReplicationController
metadata: {name: rc, labels: {own: "1"}}
spec:
  replicas: 0
  selector: {app: x, tier: "y"}
  template:
    metadata: {labels: {app: x, tier: "y", more: z}}` + templateSpec,
	}, {
		name: "replication controller without template",
		in: `
apiVersion: v1
kind: ReplicationController
metadata: {name: rc}
spec: {selector: {app: x}}
`,
		want: `
apiVersion: v1
kind: ReplicationController
metadata: {name: rc}
spec: {selector: {app: x}, replicas: 1}
`,
	}})
}

func TestServiceDefaults(t *testing.T) {
	runDefaultingCases(t, []defaultingCase{{
		name: "cluster IP",
		in: `
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  selector: {app: x}
  ports: [{name: a, port: 80}, {name: b, port: 53, protocol: UDP, targetPort: dns}]
`,
		want: `
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  selector: {app: x}
  type: ClusterIP
  sessionAffinity: None
  internalTrafficPolicy: Cluster
  ports: [{name: a, port: 80, protocol: TCP, targetPort: 80}, {name: b, port: 53, protocol: UDP, targetPort: dns}]
`,
	}, {
		name: "node port with client IP affinity",
		in: `
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  type: NodePort
  sessionAffinity: ClientIP
  ports: [{port: 80, targetPort: 8080}]
`,
		want: `
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  type: NodePort
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 10800}}
  externalTrafficPolicy: Cluster
  internalTrafficPolicy: Cluster
  ports: [{port: 80, protocol: TCP, targetPort: 8080}]
`,
	}, {
		name: "load balancer",
		in: `
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  type: LoadBalancer
  ports: [{port: 443}]
status:
  loadBalancer: {ingress: [{ip: 1.2.3.4}, {hostname: lb.example.com}, {ip: 1.2.3.5, ipMode: Proxy}]}
`,
		want: `
apiVersion: v1
kind: Service
metadata: {name: s}
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
		name: "external name",
		in: `
apiVersion: v1
kind: Service
metadata: {name: s}
spec: {type: ExternalName, externalName: example.com}
`,
		want: `
apiVersion: v1
kind: Service
metadata: {name: s}
spec: {type: ExternalName, externalName: example.com, sessionAffinity: None}
`,
	}, {
		name: "external IPs and explicit values",
		in: `
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  externalIPs: [1.2.3.4]
  externalTrafficPolicy: Local
  internalTrafficPolicy: Local
  sessionAffinity: None
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  ports: [{port: 80, targetPort: 0}]
`,
		want: `
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  type: ClusterIP
  externalIPs: [1.2.3.4]
  externalTrafficPolicy: Local
  internalTrafficPolicy: Local
  sessionAffinity: None
  ports: [{port: 80, protocol: TCP, targetPort: 80}]
`,
	}, {
		name: "cluster IP with external IPs gets an external policy",
		in: `
apiVersion: v1
kind: Service
metadata: {name: s}
spec: {externalIPs: [1.2.3.4], sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}}
`,
		want: `
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  type: ClusterIP
  externalIPs: [1.2.3.4]
  externalTrafficPolicy: Cluster
  internalTrafficPolicy: Cluster
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
`,
	}})
}

func TestOtherCoreDefaults(t *testing.T) {
	runDefaultingCases(t, []defaultingCase{{
		name: "secret",
		in:   `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}`,
		want: `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque"}`,
	}, {
		name: "secret keeps its type",
		in:   `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "kubernetes.io/tls"}`,
		want: `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "kubernetes.io/tls"}`,
	}, {
		name: "namespace",
		in:   `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns", "labels": {"a": "b"}}}`,
		want: `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns", "labels": {"a": "b", "kubernetes.io/metadata.name": "ns"}}, "status": {"phase": "Active"}}`,
	}, {
		name: "namespace label overrides a wrong value",
		in:   `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns", "labels": {"kubernetes.io/metadata.name": "other"}}, "status": {"phase": "Terminating"}}`,
		want: `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns", "labels": {"kubernetes.io/metadata.name": "ns"}}, "status": {"phase": "Terminating"}}`,
	}, {
		name: "namespace without a name yet",
		in:   `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"generateName": "ns-"}}`,
		want: `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"generateName": "ns-"}, "status": {"phase": "Active"}}`,
	}, {
		name: "node allocatable from capacity",
		in:   `{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "status": {"capacity": {"cpu": "0.0005", "memory": "1Gi"}}}`,
		want: `{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "status": {"capacity": {"cpu": "1m", "memory": "1Gi"}, "allocatable": {"cpu": "1m", "memory": "1Gi"}}}`,
	}, {
		name: "node keeps its allocatable",
		in:   `{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4"}, "allocatable": {"cpu": "3500m"}}}`,
		want: `{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4"}, "allocatable": {"cpu": "3500m"}}}`,
	}, {
		name: "persistent volume",
		in: `
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv}
spec: {capacity: {storage: 1Gi}, accessModes: [ReadWriteOnce], hostPath: {path: /tmp/pv}}
`,
		want: `
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
		name: "persistent volume sources",
		in: `
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv}
spec: {persistentVolumeReclaimPolicy: Delete, volumeMode: Block, rbd: {monitors: [m], image: i}}
status: {phase: Bound}
`,
		want: `
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
		name: "persistent volume claim",
		in: `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: pvc}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: "1.0001k"}}}
`,
		want: `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: pvc}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: "1000100m"}}, volumeMode: Filesystem}
status: {phase: Pending}
`,
	}, {
		name: "endpoints",
		in: `
apiVersion: v1
kind: Endpoints
metadata: {name: ep}
subsets: [{addresses: [{ip: 10.1.2.3}], ports: [{name: a, port: 80}, {name: b, port: 53, protocol: UDP}]}]
`,
		want: `
apiVersion: v1
kind: Endpoints
metadata: {name: ep}
subsets: [{addresses: [{ip: 10.1.2.3}], ports: [{name: a, port: 80, protocol: TCP}, {name: b, port: 53, protocol: UDP}]}]
`,
	}, {
		name: "limit range",
		in: `
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
		want: `
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
		name: "resource quota",
		in: `
apiVersion: v1
kind: ResourceQuota
metadata: {name: rq}
spec: {hard: {cpu: "0.0011", pods: "10"}}
status: {used: {cpu: "0.00001"}}
`,
		want: `
apiVersion: v1
kind: ResourceQuota
metadata: {name: rq}
spec: {hard: {cpu: 2m, pods: "10"}}
status: {used: {cpu: 1m}}
`,
	}, {
		name: "no defaults: service account",
		in:   `{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}}`,
		want: `{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}}`,
	}, {
		name: "no defaults: event",
		in:   `{"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "R"}`,
		want: `{"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "R"}`,
	}})
}

func TestConfigMapDataIsNeverNil(t *testing.T) {
	cm := defaulted(t, `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}`).(*corev1.ConfigMap)
	if cm.Data == nil {
		t.Error("upstream defaults a ConfigMap's data to an empty map")
	}
}

func TestListDefaults(t *testing.T) {
	runDefaultingCases(t, []defaultingCase{{
		name: "pod list",
		in: `
apiVersion: v1
kind: PodList
items:
- metadata: {name: a}
  spec: {containers: [{name: a, image: "nginx:1"}]}
- metadata: {name: b}
  spec: {restartPolicy: Never, containers: [{name: b, image: nginx}]}
`,
		want: `
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
		name: "secret list",
		in:   `{"apiVersion": "v1", "kind": "SecretList", "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}, "type": "Custom"}]}`,
		want: `{"apiVersion": "v1", "kind": "SecretList", "metadata": {}, "items": [{"metadata": {"name": "a"}, "type": "Opaque"}, {"metadata": {"name": "b"}, "type": "Custom"}]}`,
	}})
}

// Every core kind with a defaulter upstream has one here, and its list
// defaults each item the same way.
func TestCoreDefaultersRegistered(t *testing.T) {
	q := resource.MustParse("0.0001")
	checkRegistered(t, []runtime.Object{
		&corev1.Pod{}, &corev1.PodTemplate{}, &corev1.ReplicationController{}, &corev1.Service{},
		&corev1.Secret{}, &corev1.ConfigMap{}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "n"}},
		&corev1.Node{Status: corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourceCPU: q}}},
		&corev1.PersistentVolume{}, &corev1.PersistentVolumeClaim{},
		&corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Ports: []corev1.EndpointPort{{Port: 1}}}}},
		&corev1.LimitRange{Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, Max: corev1.ResourceList{corev1.ResourceCPU: q}}}}},
		&corev1.ResourceQuota{Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceCPU: q}}},
	})
}

// checkRegistered checks that defaulting changes each sample, and that
// defaulting a list holding the sample gives the defaulted sample.
func checkRegistered(t *testing.T, samples []runtime.Object) {
	t.Helper()
	for _, sample := range samples {
		gvks, _, err := apis.Scheme.ObjectKinds(sample)
		if err != nil {
			t.Fatal(err)
		}
		gvk := gvks[0]
		t.Run(gvk.Kind, func(t *testing.T) {
			one := sample.DeepCopyObject()
			apis.Scheme.Default(one)
			if d := cmp.Diff(wire(t, sample), wire(t, one)); d == "" {
				if cm, ok := one.(*corev1.ConfigMap); !ok || cm.Data == nil {
					t.Errorf("%s has no defaulter", gvk.Kind)
				}
			}
			list, err := apis.Scheme.New(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
			if err != nil {
				t.Fatal(err)
			}
			if err := meta.SetList(list, []runtime.Object{sample.DeepCopyObject()}); err != nil {
				t.Fatal(err)
			}
			apis.Scheme.Default(list)
			items, err := meta.ExtractList(list)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(wire(t, one), wire(t, items[0])); d != "" {
				t.Errorf("%sList does not default its items (-want +got):\n%s", gvk.Kind, d)
			}
		})
	}
}
