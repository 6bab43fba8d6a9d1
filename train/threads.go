package train

import "github.com/gsrmt/gsrmt/internal/sysmon"

// restoreThreads puts threads that inherited SCHED_IDLE from the Go
// runtime's monitor thread (after gsrmt-cli lowered it, see package
// sysmon) back to normal priority, so that neither this goroutine's
// locked thread, whose OpenMP workers inherit its policy, nor the data
// loader's threads run at idle priority. It does nothing unless
// sysmon.Quiet was called, and its errors only cost speed, so they are
// dropped.
func restoreThreads() { _, _ = sysmon.Restore() }
