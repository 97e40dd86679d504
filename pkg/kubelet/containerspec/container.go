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

// Container is the config to create container c of pod (one of
// pod.Spec.Containers or InitContainers), and what the caller must do on
// the host first (Extras). An error reading its environment's configMaps
// or secrets carries upstream's message, for CreateContainerConfigError.
//
// Image.Image is the image as the pod names it; the caller replaces it
// with the pulled image's reference (ImageSpec.Image = imageRef), as
// upstream does, keeping UserSpecifiedImage. Once it knows the image's
// user it calls VerifyRunAsNonRoot and ApplyImageUser.
func Container(ctx context.Context, pod *corev1.Pod, c *corev1.Container, src Sources, o ContainerOptions) (*runtimeapi.ContainerConfig, *Extras, error) {
	if pod == nil || c == nil {
		return nil, nil, fmt.Errorf("container config: pod and container are required")
	}
	if o.RestartCount < 0 {
		return nil, nil, fmt.Errorf("container %q: negative restart count %d", c.Name, o.RestartCount)
	}
	env, err := Env(ctx, pod, c, src, o)
	if err != nil {
		return nil, nil, err
	}
	extras := &Extras{}
	logDir := o.PodLogDir
	if logDir == "" {
		logDir = PodLogDir(pod)
	}
	extras.Dirs = append(extras.Dirs, HostDir{Path: filepath.Join(logDir, c.Name), Perm: containerLogsDirPerm})

	mnts, err := mounts(pod, c, env, o, extras)
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
		Mounts:      mnts,
		LogPath:     ContainerLogPath(c.Name, o.RestartCount),
		Stdin:       c.Stdin,
		StdinOnce:   c.StdinOnce,
		Tty:         c.TTY,
		Envs:        make([]*runtimeapi.KeyValue, len(env)),
	}
	for i, e := range env {
		cfg.Envs[i] = &runtimeapi.KeyValue{Key: e.Name, Value: []byte(e.Value)}
	}

	sc, err := ContainerSecurityContext(pod, c, o.Security)
	if err != nil {
		return nil, nil, err
	}
	memoryCapacity := o.MemoryCapacity
	if memoryCapacity == 0 {
		memoryCapacity = o.NodeAllocatable.Memory().Value()
	}
	cfg.Linux = &runtimeapi.LinuxContainerConfig{
		Resources:       ContainerResources(pod, c, memoryCapacity),
		SecurityContext: sc,
	}
	eff := EffectiveSecurityContext(pod, c)
	extras.RunAsNonRoot = eff.RunAsNonRoot != nil && *eff.RunAsNonRoot
	return cfg, extras, nil
}
