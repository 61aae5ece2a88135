package client

import (
	"context"
	"fmt"
	"sync"
)

// EndpointStatus is `etcdctl endpoint status` for one endpoint. When Err is
// set the endpoint did not answer and the other fields are zero.
type EndpointStatus struct {
	Endpoint         string
	MemberID         uint64
	ClusterID        uint64
	Version          string
	StorageVersion   string
	DBSize           int64
	DBSizeInUse      int64
	Leader           uint64
	IsLearner        bool
	RaftTerm         uint64
	RaftIndex        uint64
	RaftAppliedIndex uint64
	// Errors are the alarms and errors the member reports about itself
	// (e.g. "memberID:... alarm:NOSPACE").
	Errors []string
	Err    error
}

// IsLeader tells whether the member is its cluster's leader.
func (s EndpointStatus) IsLeader() bool {
	return s.Err == nil && s.MemberID != 0 && s.MemberID == s.Leader
}

// Status asks each endpoint for its status, all at once. An endpoint that
// does not answer gets its Err set; the call itself does not fail.
func (c *Client) Status(ctx context.Context, endpoints []string) []EndpointStatus {
	out := make([]EndpointStatus, len(endpoints))
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		wg.Go(func() {
			out[i] = c.status(ctx, ep)
		})
	}
	wg.Wait()
	return out
}

func (c *Client) status(ctx context.Context, endpoint string) EndpointStatus {
	s := EndpointStatus{Endpoint: endpoint}
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	resp, err := c.Maintenance.Status(ctx, endpoint)
	if err != nil {
		s.Err = c.Describe(err, fmt.Sprintf("read the status of endpoint %s", endpoint), "")
		return s
	}
	if h := resp.Header; h != nil {
		s.MemberID = h.MemberId
		s.ClusterID = h.ClusterId
		s.RaftTerm = h.RaftTerm
	}
	s.Version = resp.Version
	s.StorageVersion = resp.StorageVersion
	s.DBSize = resp.DbSize
	s.DBSizeInUse = resp.DbSizeInUse
	s.Leader = resp.Leader
	s.IsLearner = resp.IsLearner
	s.RaftIndex = resp.RaftIndex
	s.RaftAppliedIndex = resp.RaftAppliedIndex
	if resp.RaftTerm != 0 {
		s.RaftTerm = resp.RaftTerm
	}
	s.Errors = append([]string(nil), resp.Errors...)
	return s
}

// FormatMemberID formats a member ID the way etcdctl prints it: lowercase
// hexadecimal without padding.
func FormatMemberID(id uint64) string { return fmt.Sprintf("%x", id) }
