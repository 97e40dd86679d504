package app

import (
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
)

// watchClosingModules log, at the verbosity k8s.io/apiserver uses for them,
// why the server closes a watch (an unresponsive client: its buffer full).
// They apply unless --vmodule is given.
const watchClosingModules = "cache_watcher=1"

// logWatchClosings turns on the log lines of watchClosingModules.
func logWatchClosings(cmd *cobra.Command) {
	if f := cmd.Flags().Lookup("vmodule"); f == nil || f.Changed {
		return
	}
	if err := cmd.Flags().Set("vmodule", watchClosingModules); err != nil {
		klog.ErrorS(err, "Cannot log why watches are closed", "vmodule", watchClosingModules)
	}
}
