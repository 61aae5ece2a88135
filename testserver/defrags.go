package testserver

import (
	"sync"
	"time"
)

// Defragmentation is one Defragment request a member served: when its
// handler started and returned, as the member saw it.
type Defragmentation struct {
	// Member is the member's name.
	Member     string
	Start, End time.Time
	// Err is the request's error, nil when the defragmentation succeeded.
	Err error
}

// defragLog records the Defragment requests of all members.
type defragLog struct {
	mu  sync.Mutex
	log []Defragmentation
}

func (l *defragLog) add(d Defragmentation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log = append(l.log, d)
}

// Defragmentations returns every Defragment request the members have
// served so far, in the order they ended. Tests use it to check that
// defragmentations did not overlap.
func (c *Cluster) Defragmentations() []Defragmentation {
	c.defrags.mu.Lock()
	defer c.defrags.mu.Unlock()
	return append([]Defragmentation(nil), c.defrags.log...)
}
