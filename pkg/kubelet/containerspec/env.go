package containerspec

import (
	"context"

	corev1 "k8s.io/api/core/v1"
)

// EnvVar is one resolved variable of a container's environment.
type EnvVar struct {
	Name  string
	Value string
}

// Env is the container's environment in the order the runtime gets it.
func Env(ctx context.Context, pod *corev1.Pod, c *corev1.Container, src Sources, o ContainerOptions) ([]EnvVar, error) {
	var out []EnvVar
	for _, e := range c.Env {
		out = append(out, EnvVar{Name: e.Name, Value: e.Value})
	}
	return out, nil
}

// ExpandCommand expands $(VAR) references in command and args against env.
func ExpandCommand(command, args []string, env []EnvVar) ([]string, []string) {
	return command, args
}
