package apiserver

import "time"

// SetCertCheckInterval makes o's server check its certificates every d
// (tests only: no flag or request reaches it).
func SetCertCheckInterval(o *Options, d time.Duration) { o.certCheckInterval = d }
