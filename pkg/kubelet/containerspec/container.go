package containerspec

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerLogPath is a container's log file, relative to its pod's log
// directory: <name>/<restartCount>.log.
func ContainerLogPath(containerName string, restartCount int) string {
	return filepath.Join(containerName, strconv.Itoa(restartCount)+".log")
}

// Container is the config to create container c of pod (a container of
// pod.Spec.Containers or InitContainers), and the host files the caller
// must write first. An error reading its environment's configMaps or
// secrets carries upstream's message, for CreateContainerConfigError.
func Container(ctx context.Context, pod *corev1.Pod, c *corev1.Container, src Sources, o ContainerOptions) (*runtimeapi.ContainerConfig, *Extras, error) {
	if o.RestartCount < 0 {
		return nil, nil, fmt.Errorf("container %q: negative restart count %d", c.Name, o.RestartCount)
	}
	env, err := Env(ctx, pod, c, src, o)
	if err != nil {
		return nil, nil, err
	}
	command, args := ExpandCommand(c.Command, c.Args, env)
	cfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{
			Name:    c.Name,
			Attempt: uint32(o.RestartCount),
		},
		Image:       &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Image},
		Command:     command,
		Args:        args,
		WorkingDir:  c.WorkingDir,
		Labels:      ContainerLabels(pod, c),
		Annotations: ContainerAnnotations(pod, c, o.RestartCount),
		LogPath:     ContainerLogPath(c.Name, o.RestartCount),
		Stdin:       c.Stdin,
		StdinOnce:   c.StdinOnce,
		Tty:         c.TTY,
	}
	for _, e := range env {
		cfg.Envs = append(cfg.Envs, &runtimeapi.KeyValue{Key: e.Name, Value: []byte(e.Value)})
	}
	extras := &Extras{}
	return cfg, extras, nil
}
