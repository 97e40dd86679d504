// Package imagelocality is the ImageLocality plugin: nodes that already
// hold the pod's images score higher, weighted by image size and scaled
// down for images present on few nodes, so pods do not all pile onto the
// one node that pulled an image first.
package imagelocality

import (
	"context"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
)

// Name is the plugin's name in configuration.
const Name = names.ImageLocality

// Upstream's thresholds: below 23 MiB an image is cheap to pull (score
// 0); scores saturate at 1000 MiB per image of the pod.
const (
	mb                    int64 = 1024 * 1024
	minThreshold                = 23 * mb
	maxContainerThreshold       = 1000 * mb
)

// ImageLocality scores by images present.
type ImageLocality struct {
	handle framework.Handle
}

var _ framework.ScorePlugin = &ImageLocality{}

// New builds the plugin; it takes no args.
func New(_ context.Context, _ runtime.Object, h framework.Handle) (framework.Plugin, error) {
	if h == nil {
		return nil, fmt.Errorf("ImageLocality needs a framework handle")
	}
	return &ImageLocality{handle: h}, nil
}

// Name is the plugin's name.
func (pl *ImageLocality) Name() string { return Name }

// Score maps the sum of the present images' spread-scaled sizes linearly
// from [minThreshold, maxThreshold] to [0, 100].
func (pl *ImageLocality) Score(_ context.Context, _ *framework.CycleState, pod *v1.Pod, nodeInfo *framework.NodeInfo) (int64, *framework.Status) {
	lister := pl.handle.SnapshotSharedLister()
	if lister == nil {
		return 0, framework.NewStatus(framework.Error, "no snapshot")
	}
	all, err := lister.NodeInfos().List()
	if err != nil {
		return 0, framework.AsStatus(err)
	}
	sum, count := sumImageScores(nodeInfo, pod, len(all))
	return calculatePriority(sum, count), nil
}

// ScoreExtensions: none, Score is already 0-100.
func (pl *ImageLocality) ScoreExtensions() framework.ScoreExtensions { return nil }

func calculatePriority(sum int64, imageCount int) int64 {
	maxThreshold := maxContainerThreshold * int64(imageCount)
	if sum < minThreshold {
		sum = minThreshold
	} else if sum > maxThreshold {
		sum = maxThreshold
	}
	if maxThreshold <= minThreshold {
		// A pod without images (impossible once validated).
		return 0
	}
	return framework.MaxNodeScore * (sum - minThreshold) / (maxThreshold - minThreshold)
}

// sumImageScores adds up the node's images among the pod's (init
// containers, containers and image volumes) and counts the pod's images.
func sumImageScores(ni *framework.NodeInfo, pod *v1.Pod, totalNodes int) (int64, int) {
	var sum int64
	add := func(image string) {
		if s, ok := ni.ImageStates[normalizedImageName(image)]; ok {
			sum += scaledImageScore(s, totalNodes)
		}
	}
	for _, c := range pod.Spec.InitContainers {
		add(c.Image)
	}
	for _, c := range pod.Spec.Containers {
		add(c.Image)
	}
	count := len(pod.Spec.InitContainers) + len(pod.Spec.Containers)
	for _, vol := range pod.Spec.Volumes {
		if vol.Image == nil {
			continue
		}
		add(vol.Image.Reference)
		count++
	}
	return sum, count
}

// scaledImageScore is the image's size times the fraction of nodes that
// have it.
func scaledImageScore(s *framework.ImageStateSummary, totalNodes int) int64 {
	if totalNodes <= 0 {
		return 0
	}
	return int64(float64(s.Size) * (float64(s.NumNodes) / float64(totalNodes)))
}

// normalizedImageName adds ":latest" to a name without a tag, as node
// status lists images with their tags. A digest reference ("@sha256:…")
// has its colon after the last slash and is kept as is.
func normalizedImageName(name string) string {
	if strings.LastIndex(name, ":") <= strings.LastIndex(name, "/") {
		name += ":latest"
	}
	return name
}
