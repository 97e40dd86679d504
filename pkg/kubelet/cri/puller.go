package cri

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// puller runs the image pulls in the background, at most max at a time
// in the order asked (1: upstream's default --serialize-image-pulls), and
// one pull per image and credentials: pods asking for an image being
// pulled wait for that pull.
type puller struct {
	ctx   context.Context
	slots chan struct{}

	mu   sync.Mutex
	jobs map[string]*pullJob
}

// pullJob is one pull: done closes once it ended.
type pullJob struct {
	done chan struct{}
	// imageRef is the pulled image's id, err why it failed; took is how
	// long the pull itself took (not its wait for a slot).
	imageRef string
	err      error
	took     time.Duration
	// ended are called when the pull ended, before done closes (so that
	// its events come before those of the container it was for).
	ended []func(*pullJob)
}

func (j *pullJob) finished() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

func newPuller(ctx context.Context, max int) *puller {
	if max <= 0 {
		max = 1
	}
	return &puller{ctx: ctx, slots: make(chan struct{}, max), jobs: map[string]*pullJob{}}
}

// pull starts pulling image with auths, or joins the pull of it under
// way; ended is called once it ended.
func (p *puller) pull(image string, auths []*runtimeapi.AuthConfig, run func(ctx context.Context) (string, error), ended func(*pullJob)) *pullJob {
	key := pullKey(image, auths)
	p.mu.Lock()
	defer p.mu.Unlock()
	if j := p.jobs[key]; j != nil {
		j.ended = append(j.ended, ended)
		return j
	}
	j := &pullJob{done: make(chan struct{}), ended: []func(*pullJob){ended}}
	p.jobs[key] = j
	go func() {
		defer func() {
			p.mu.Lock()
			delete(p.jobs, key)
			ended := j.ended
			p.mu.Unlock()
			for _, f := range ended {
				f(j)
			}
			close(j.done)
		}()
		select {
		case p.slots <- struct{}{}:
		case <-p.ctx.Done():
			j.err = p.ctx.Err()
			return
		}
		start := time.Now()
		j.imageRef, j.err = run(p.ctx)
		j.took = time.Since(start)
		<-p.slots
	}()
	return j
}

// pullKey tells pulls apart by image and credentials: a pod's secrets
// may fail where another's succeed.
func pullKey(image string, auths []*runtimeapi.AuthConfig) string {
	if len(auths) == 0 {
		return image
	}
	raw, _ := json.Marshal(auths)
	sum := sha256.Sum256(raw)
	return image + "\x00" + hex.EncodeToString(sum[:])
}
