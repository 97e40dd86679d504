package containerspec

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceEnv are the service-link variables a pod in namespace sees, as
// upstream's kubelet makes them (getServiceEnvVarMap, envvars.FromServices):
// default/kubernetes always, the namespace's own services when
// enableServiceLinks (one of them named kubernetes wins over default's),
// each with a cluster IP: <NAME>_SERVICE_HOST, <NAME>_SERVICE_PORT[_<PORT
// NAME>] and the docker-link <NAME>_PORT* variables. Services come in name
// order (upstream's is a map's).
func ServiceEnv(services []*corev1.Service, namespace string, enableServiceLinks bool) []corev1.EnvVar {
	byName := map[string]*corev1.Service{}
	for _, s := range services {
		if s == nil || s.Spec.ClusterIP == "" || s.Spec.ClusterIP == corev1.ClusterIPNone {
			continue
		}
		switch {
		case s.Namespace == namespace && enableServiceLinks:
			byName[s.Name] = s
		case s.Namespace == metav1.NamespaceDefault && s.Name == "kubernetes":
			if _, ok := byName[s.Name]; !ok {
				byName[s.Name] = s
			}
		}
	}
	var out []corev1.EnvVar
	for _, name := range sortedKeys(byName) {
		out = append(out, serviceLinkVars(byName[name])...)
	}
	return out
}

func envVarName(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) }

func serviceLinkVars(s *corev1.Service) []corev1.EnvVar {
	if len(s.Spec.Ports) == 0 {
		// Validation requires a port; without one there is nothing to link.
		return nil
	}
	prefix := envVarName(s.Name)
	ip := s.Spec.ClusterIP
	vars := []corev1.EnvVar{
		{Name: prefix + "_SERVICE_HOST", Value: ip},
		{Name: prefix + "_SERVICE_PORT", Value: strconv.Itoa(int(s.Spec.Ports[0].Port))},
	}
	for _, p := range s.Spec.Ports {
		if p.Name != "" {
			vars = append(vars, corev1.EnvVar{Name: prefix + "_SERVICE_PORT_" + envVarName(p.Name), Value: strconv.Itoa(int(p.Port))})
		}
	}
	for i, p := range s.Spec.Ports {
		protocol := string(corev1.ProtocolTCP)
		if p.Protocol != "" {
			protocol = string(p.Protocol)
		}
		proto := strings.ToLower(protocol)
		url := fmt.Sprintf("%s://%s", proto, net.JoinHostPort(ip, strconv.Itoa(int(p.Port))))
		if i == 0 {
			vars = append(vars, corev1.EnvVar{Name: prefix + "_PORT", Value: url})
		}
		pp := fmt.Sprintf("%s_PORT_%d_%s", prefix, p.Port, strings.ToUpper(protocol))
		vars = append(vars,
			corev1.EnvVar{Name: pp, Value: url},
			corev1.EnvVar{Name: pp + "_PROTO", Value: proto},
			corev1.EnvVar{Name: pp + "_PORT", Value: strconv.Itoa(int(p.Port))},
			corev1.EnvVar{Name: pp + "_ADDR", Value: ip},
		)
	}
	return vars
}
