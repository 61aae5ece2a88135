package recipes

import "time"

// The functional options of the package: Option for the locks (Mutex,
// RWMutex, Semaphore), QueueOption for the queues (Queue, PriorityQueue,
// Consumer).

// Option configures a [Mutex], [RWMutex] or [Semaphore].
type Option func(*options)

type options struct {
	value string
}

// WithValue sets the value stored in the holder's key (for a Mutex,
// RWMutex or Semaphore), e.g. a host name, so operators can see who holds
// or waits for a lock with a plain etcdctl get.
func WithValue(v string) Option { return func(o *options) { o.value = v } }

func buildOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// QueueOption configures a [Queue], [PriorityQueue] or [Consumer].
type QueueOption func(*queueOptions)

type queueOptions struct {
	candidates int
	dedupe     time.Duration // WithDedupeWindow
	// WithVisibilityTimeout
	visibility    time.Duration
	hasVisibility bool
	maxTxnOps     int // WithMaxTxnOps
}

// WithCandidates sets the most of the oldest free items one dequeue or
// claim transaction tries, oldest first (default 16). It bounds how many
// consumers can take items at the same moment without a retry; each
// transaction still takes the oldest item left. Within that bound the
// number adapts to the contention seen: every candidate is carried by the
// transaction through raft, so trying more than needed costs CPU on every
// member.
func WithCandidates(n int) QueueOption {
	return func(o *queueOptions) {
		if n > 0 {
			o.candidates = n
		}
	}
}
