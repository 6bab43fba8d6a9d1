//go:build !linux

package sysmon

import "time"

// Quiet returns ErrUnsupported outside Linux.
func Quiet(timeout time.Duration) (int, error) { return 0, ErrUnsupported }

// QuietTID returns 0 outside Linux.
func QuietTID() int { return 0 }

// Restore does nothing outside Linux.
func Restore() (int, error) { return 0, nil }
