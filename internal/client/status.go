package client

import (
	"context"
	"fmt"
	"slices"
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
	// Alarms are the names of the alarms active for this member (NOSPACE,
	// CORRUPT), sorted, from the cluster's alarm list; nil when that list
	// could not be read (AlarmsErr says why).
	Alarms    []string
	AlarmsErr error
	Err       error
}

// Fragmentation is the share of the database file that is allocated but
// not in use, (db_size - db_size_in_use) / db_size, from 0 to 1: what a
// defragmentation would give back.
func (s EndpointStatus) Fragmentation() float64 {
	if s.DBSize <= 0 || s.DBSizeInUse >= s.DBSize {
		return 0
	}
	return float64(s.DBSize-s.DBSizeInUse) / float64(s.DBSize)
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
	alarms, err := c.Alarms(ctx)
	for i := range out {
		if out[i].Err != nil {
			continue
		}
		if err != nil {
			out[i].AlarmsErr = err
			continue
		}
		out[i].Alarms = append([]string{}, alarms[out[i].MemberID]...)
	}
	return out
}

// Alarms returns the cluster's active alarms by member ID, each member's
// sorted by name (NOSPACE, CORRUPT).
func (c *Client) Alarms(ctx context.Context) (map[uint64][]string, error) {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	resp, err := c.Maintenance.AlarmList(ctx)
	if err != nil {
		return nil, c.Describe(err, "list the cluster's alarms", "")
	}
	out := map[uint64][]string{}
	for _, a := range resp.Alarms {
		out[a.MemberID] = append(out[a.MemberID], a.Alarm.String())
	}
	for _, names := range out {
		slices.Sort(names)
	}
	return out, nil
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
