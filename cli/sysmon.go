package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/gsrmt/gsrmt/internal/sysmon"
)

// sysmonState says what quietSysmon did, for `gsrmt-cli env`.
var sysmonState = "not attempted"

// quietSysmon sets the Go runtime's monitor thread to SCHED_IDLE (see
// package sysmon) unless GSRMT_SYSMON=normal. A failure only costs speed,
// so it is reported by `gsrmt-cli env` (and on stderr with GSRMT_DEBUG=1)
// rather than stopping the command.
func quietSysmon() {
	tid, err := sysmon.QuietUnlessDisabled(200 * time.Millisecond)
	if errors.Is(err, sysmon.ErrDisabled) {
		sysmonState = "normal priority (GSRMT_SYSMON=normal)"
		return
	}
	if err != nil {
		sysmonState = "normal priority: " + err.Error()
		if os.Getenv("GSRMT_DEBUG") == "1" {
			fmt.Fprintln(os.Stderr, "gsrmt-cli:", err)
		}
		return
	}
	sysmonState = fmt.Sprintf("thread %d at SCHED_IDLE (GSRMT_SYSMON=normal leaves it alone)", tid)
}
