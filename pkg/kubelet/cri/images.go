package cri

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
)

// Upstream kubelet's image waiting reasons (pkg/kubelet/images).
const (
	ReasonErrImagePull        = "ErrImagePull"
	ReasonImagePullBackOff    = "ImagePullBackOff"
	ReasonErrImageNeverPull   = "ErrImageNeverPull"
	ReasonInvalidImageName    = "InvalidImageName"
	ReasonImageInspectError   = "ImageInspectError"
	imagePullBackoffInitial   = 10 * time.Second
	defaultImageTag           = "latest"
	dockerHubDomain           = "docker.io"
	legacyDockerHubDomain     = "index.docker.io"
	eventPulling              = "Pulling"
	eventPulled               = "Pulled"
	eventFailed               = "Failed"
	eventBackOff              = "BackOff"
	eventErrImageNeverPull    = "ErrImageNeverPull"
	eventInspectFailed        = "InspectFailed"
	messageImagePresentPrefix = "Container image %q already present on machine and can be accessed by the pod"
)

// imageFailure is why a container's image is not there.
type imageFailure struct {
	reason, message string
	retry           time.Duration
	// pending: not a failure, the pull is under way.
	pending bool
}

func (f *imageFailure) Error() string { return f.reason + ": " + f.message }

// ensureImage makes the container's image present as its pull policy
// says and returns its reference in the runtime (the image id), with
// upstream's events and back-off.
func (r *Runtime) ensureImage(ctx context.Context, pod *corev1.Pod, c *corev1.Container, ref *corev1.ObjectReference, sandbox *runtimeapi.PodSandboxConfig, st *podState) (string, *runtimeapi.Image, *imageFailure) {
	image, err := withDefaultTag(c.Image)
	if err != nil {
		msg := fmt.Sprintf("Failed to apply default image tag %q: %v", c.Image, err)
		r.cfg.Recorder.Event(ref, corev1.EventTypeWarning, eventInspectFailed, msg)
		return "", nil, &imageFailure{reason: ReasonInvalidImageName, message: msg, retry: retryInterval}
	}
	spec := &runtimeapi.ImageSpec{Image: image, Annotations: pod.Annotations}
	policy := c.ImagePullPolicy
	if policy == "" {
		policy = corev1.PullIfNotPresent
		if strings.HasSuffix(image, ":"+defaultImageTag) && !strings.Contains(image, "@") {
			policy = corev1.PullAlways
		}
	}
	if policy != corev1.PullAlways {
		present, err := r.images.ImageStatus(ctx, spec, false)
		if err != nil {
			msg := fmt.Sprintf("Failed to inspect image %q: %v", image, err)
			r.cfg.Recorder.Event(ref, corev1.EventTypeWarning, eventInspectFailed, msg)
			return "", nil, &imageFailure{reason: ReasonImageInspectError, message: msg, retry: retryInterval}
		}
		if id := present.GetImage().GetId(); id != "" {
			r.cfg.Recorder.Eventf(ref, corev1.EventTypeNormal, eventPulled, messageImagePresentPrefix, c.Image)
			return id, present.Image, nil
		}
		if policy == corev1.PullNever {
			msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
			r.cfg.Recorder.Event(ref, corev1.EventTypeWarning, eventErrImageNeverPull, msg)
			return "", nil, &imageFailure{reason: ReasonErrImageNeverPull, message: msg, retry: retryInterval}
		}
	}

	now := r.clock.Now()
	r.mu.Lock()
	ps := st.pulls[image]
	if ps == nil {
		ps = &pullState{}
		st.pulls[image] = ps
	}
	wait, lastErr := time.Duration(0), ps.lastErr
	if ps.backoff.wait > 0 {
		wait = ps.backoff.updated.Add(ps.backoff.wait).Sub(now)
	}
	r.mu.Unlock()
	if wait > 0 {
		msg := fmt.Sprintf("Back-off pulling image %q", c.Image)
		r.cfg.Recorder.Event(ref, corev1.EventTypeNormal, eventBackOff, msg)
		if lastErr != "" {
			msg += ": " + lastErr
		}
		return "", nil, &imageFailure{reason: ReasonImagePullBackOff, message: msg, retry: wait}
	}

	r.mu.Lock()
	job := ps.job
	r.mu.Unlock()
	if job == nil {
		// Pulled in the background: the sync goes on, and looks again.
		r.cfg.Recorder.Eventf(ref, corev1.EventTypeNormal, eventPulling, "Pulling image %q", c.Image)
		auths := r.pullAuths(ctx, pod, image)
		job = r.puller.pull(image, auths, func(ctx context.Context) (string, error) {
			return r.pull(ctx, spec, auths, sandbox)
		}, func(job *pullJob) { r.pullEnded(pod, c, ref, st, now, job) })
		r.mu.Lock()
		ps.job = job
		r.mu.Unlock()
	}
	if !job.finished() {
		return "", nil, &imageFailure{reason: container.ReasonContainerCreating, retry: r.cfg.PollInterval, pending: true}
	}
	r.mu.Lock()
	ps.job = nil
	if job.err != nil {
		ps.backoff.next(now, imagePullBackoffInitial, imageBackoffMax, 2*imageBackoffMax)
		ps.lastErr = ReasonErrImagePull + ": " + job.err.Error()
		retry := ps.backoff.wait
		r.mu.Unlock()
		return "", nil, &imageFailure{reason: ReasonErrImagePull, message: job.err.Error(), retry: retry}
	}
	delete(st.pulls, image)
	r.mu.Unlock()
	var img *runtimeapi.Image
	if s, err := r.images.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: job.imageRef}, false); err == nil {
		img = s.GetImage()
	}
	return job.imageRef, img, nil
}

// pullEnded records the end of a pod's pull (asked at asked) as
// upstream's events, and wakes the pod's sync.
func (r *Runtime) pullEnded(pod *corev1.Pod, c *corev1.Container, ref *corev1.ObjectReference, st *podState, asked time.Time, job *pullJob) {
	r.mu.Lock()
	alive := r.pods[pod.UID] == st
	r.mu.Unlock()
	if !alive || r.bg.Err() != nil {
		// The pod left the node while it waited, or the runtime closed.
		return
	}
	if job.err != nil {
		r.cfg.Recorder.Eventf(ref, corev1.EventTypeWarning, eventFailed, "Failed to pull image %q: %v", c.Image, job.err)
	} else {
		var size uint64
		if s, err := r.images.ImageStatus(r.bg, &runtimeapi.ImageSpec{Image: job.imageRef}, false); err == nil && s.GetImage() != nil {
			size = s.Image.GetSize()
		}
		r.cfg.Recorder.Eventf(ref, corev1.EventTypeNormal, eventPulled,
			"Successfully pulled image %q in %v (%v including waiting). Image size: %v bytes.",
			c.Image, job.took.Truncate(time.Millisecond), r.clock.Since(asked).Truncate(time.Millisecond), size)
	}
	if r.cfg.Enqueue != nil {
		go func() {
			<-job.done
			r.cfg.Enqueue(pod.UID)
		}()
	}
}

// pull pulls with each of the pod's pull secrets for the image's
// registry in turn, anonymously if it has none.
func (r *Runtime) pull(ctx context.Context, spec *runtimeapi.ImageSpec, auths []*runtimeapi.AuthConfig, sandbox *runtimeapi.PodSandboxConfig) (string, error) {
	if len(auths) == 0 {
		return r.images.PullImage(ctx, spec, nil, sandbox)
	}
	var errs []error
	for _, auth := range auths {
		id, err := r.images.PullImage(ctx, spec, auth, sandbox)
		if err == nil {
			return id, nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}

// dockerConfig is a .dockerconfigjson's auths (or a .dockercfg).
type dockerConfig map[string]struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// pullAuths are the credentials of the pod's imagePullSecrets that match
// the image's registry.
func (r *Runtime) pullAuths(ctx context.Context, pod *corev1.Pod, image string) []*runtimeapi.AuthConfig {
	if r.cfg.Client == nil || len(pod.Spec.ImagePullSecrets) == 0 {
		return nil
	}
	domain, repo := splitImage(image)
	var out []*runtimeapi.AuthConfig
	for _, ref := range pod.Spec.ImagePullSecrets {
		if ref.Name == "" {
			continue
		}
		secret, err := r.cfg.Client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			klog.FromContext(ctx).Info("Unable to retrieve pull secret, the image pull may not succeed.", "pod", klog.KObj(pod), "secret", klog.KRef(pod.Namespace, ref.Name), "err", err)
			continue
		}
		var cfg dockerConfig
		switch secret.Type {
		case corev1.SecretTypeDockerConfigJson:
			var wrapped struct {
				Auths dockerConfig `json:"auths"`
			}
			if err := json.Unmarshal(secret.Data[corev1.DockerConfigJsonKey], &wrapped); err != nil {
				continue
			}
			cfg = wrapped.Auths
		case corev1.SecretTypeDockercfg:
			if err := json.Unmarshal(secret.Data[corev1.DockerConfigKey], &cfg); err != nil {
				continue
			}
		default:
			continue
		}
		for key, entry := range cfg {
			if !registryMatches(key, domain, repo) {
				continue
			}
			a := &runtimeapi.AuthConfig{Username: entry.Username, Password: entry.Password,
				IdentityToken: entry.IdentityToken, RegistryToken: entry.RegistryToken, ServerAddress: key}
			if entry.Auth != "" {
				if raw, err := base64.StdEncoding.DecodeString(entry.Auth); err == nil {
					if user, pass, ok := strings.Cut(string(raw), ":"); ok {
						a.Username, a.Password = user, pass
					}
				}
			}
			out = append(out, a)
		}
	}
	return out
}

// registryMatches tells whether a credential key (a registry host, maybe
// with a scheme and a path) covers the image at domain/repo.
func registryMatches(key, domain, repo string) bool {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	key = strings.TrimSuffix(key, "/")
	host, path, _ := strings.Cut(key, "/")
	if host == legacyDockerHubDomain || host == "registry-1.docker.io" {
		host, path = dockerHubDomain, ""
	}
	if host != domain {
		return false
	}
	if path == "" || path == "v1" || path == "v2" {
		return true
	}
	return repo == path || strings.HasPrefix(repo, path+"/")
}

// splitImage is an image's registry and repository, Docker Hub's default
// as docker.io.
func splitImage(image string) (domain, repo string) {
	name := image
	if at := strings.Index(name, "@"); at >= 0 {
		name = name[:at]
	}
	if slash, colon := strings.LastIndex(name, "/"), strings.LastIndex(name, ":"); colon > slash {
		name = name[:colon]
	}
	first, rest, ok := strings.Cut(name, "/")
	if !ok || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return dockerHubDomain, name
	}
	if first == legacyDockerHubDomain {
		first = dockerHubDomain
	}
	return first, rest
}

// withDefaultTag adds :latest to an image with neither tag nor digest.
func withDefaultTag(image string) (string, error) {
	if image == "" || strings.ContainsAny(image, " \t\n") {
		return "", fmt.Errorf("couldn't parse image name %q: invalid reference format", image)
	}
	if _, repo := splitImage(image); strings.ToLower(repo) != repo {
		return "", fmt.Errorf("couldn't parse image name %q: invalid reference format: repository name must be lowercase", image)
	}
	if hasDigestOrTag(image) {
		return image, nil
	}
	return image + ":" + defaultImageTag, nil
}

func hasDigestOrTag(image string) bool {
	if strings.Contains(image, "@") {
		return true
	}
	slash, colon := strings.LastIndex(image, "/"), strings.LastIndex(image, ":")
	return colon > slash
}
