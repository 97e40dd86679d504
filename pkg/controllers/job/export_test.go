package job

import "time"

// SetPodFailureBackoff shortens the pod failure backoff for a test.
func SetPodFailureBackoff(d time.Duration) (restore func()) {
	old := defaultPodFailureBackoff
	defaultPodFailureBackoff = d
	return func() { defaultPodFailureBackoff = old }
}
