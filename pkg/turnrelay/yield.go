package turnrelay

import (
	"time"
	_ "unsafe" // go:linkname
)

// yieldEvery is how often a worker passes through the scheduler on its own. sysmon
// preempts a goroutine that has not done so for 10 ms, and a worker waiting in
// epoll_wait looks like one: each preemption costs a signal, and re-queueing the worker on
// the global run queue wakes an idle thread (an inter-processor interrupt in a VM). At
// paced loads that was most of the CPU turnd spent beyond coturn.
const yieldEvery = 5 * time.Millisecond

// goyield puts the calling goroutine at the back of its own P's run queue and reschedules,
// without waking another thread: the runtime's cheap yield. The runtime keeps it for
// linkname users (go.dev/issue/67401; gVisor's dispatch loops use it for the same reason).
//
//go:linkname goyield runtime.goyield
func goyield()
