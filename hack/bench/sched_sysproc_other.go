//go:build !linux

package main

import "syscall"

func schedSysProcAttr() *syscall.SysProcAttr { return nil }
