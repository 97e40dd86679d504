package volume

import "syscall"

type syscallStat = syscall.Stat_t
