package maintenance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

// Member is one member as Measure found it.
type Member struct {
	ID        uint64
	Name      string
	ClientURL string
	IsLearner bool
	// IsLeader, DBSize, DBSizeInUse and Alarms come from the member's
	// status; they are zero when Err is set.
	IsLeader    bool
	DBSize      int64
	DBSizeInUse int64
	Alarms      []string
	// Err says why the member's status could not be read (it is down, has
	// not started, or has no client URL).
	Err error
}

// Label names the member for people: its name and ID.
func (m Member) Label() string {
	if m.Name == "" {
		return "member " + client.FormatMemberID(m.ID)
	}
	return fmt.Sprintf("%s (ID %s)", m.Name, client.FormatMemberID(m.ID))
}

// Free is the number of bytes a defragmentation would give back.
func (m Member) Free() int64 {
	if m.DBSizeInUse >= m.DBSize {
		return 0
	}
	return m.DBSize - m.DBSizeInUse
}

// FreeRatio is Free as a share of the database file, from 0 to 1.
func (m Member) FreeRatio() float64 {
	if m.DBSize <= 0 {
		return 0
	}
	return float64(m.Free()) / float64(m.DBSize)
}

func (m Member) hasAlarm(name string) bool { return slices.Contains(m.Alarms, name) }

// Survey is the state of every member of a cluster at one moment.
type Survey struct {
	ClusterID uint64
	// Members are sorted by name, then ID.
	Members []Member
}

// member returns the member with the given ID.
func (s Survey) member(id uint64) (Member, bool) {
	for _, m := range s.Members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// quorumSafe tells whether the cluster keeps a quorum while the member id
// is busy: the healthy voting members other than id must be a majority of
// all voting members. A learner's defragmentation never risks the quorum.
func (s Survey) quorumSafe(id uint64) (bool, string) {
	voters, healthy, leader := 0, 0, false
	for _, m := range s.Members {
		if m.Err == nil && m.IsLeader {
			leader = true
		}
		if m.IsLearner {
			continue
		}
		voters++
		if m.Err == nil && m.ID != id {
			healthy++
		}
	}
	if target, ok := s.member(id); ok && target.IsLearner {
		return leader, "the cluster has no leader"
	}
	if !leader {
		return false, "the cluster has no leader"
	}
	if healthy < voters/2+1 {
		return false, fmt.Sprintf("only %d of the %d voting members would serve while it is defragmented, and the quorum is %d",
			healthy, voters, voters/2+1)
	}
	return true, ""
}

// ErrNoMembers is returned by Measure when the member list is empty.
var ErrNoMembers = errors.New("the cluster has no members")

// Measure reads the member list, then the status of every member through
// its first client URL, all at once. A member that does not answer has Err
// set; Measure fails only when the member list cannot be read.
func Measure(ctx context.Context, cl *client.Client) (Survey, error) {
	rctx, cancel := cl.Ctx(ctx)
	resp, err := cl.MemberList(rctx)
	cancel()
	if err != nil {
		return Survey{}, cl.Describe(err, "list the cluster's members", "")
	}
	if len(resp.Members) == 0 {
		return Survey{}, ErrNoMembers
	}
	s := Survey{}
	if resp.Header != nil {
		s.ClusterID = resp.Header.ClusterId
	}
	var urls []string
	var idx []int
	for _, pm := range resp.Members {
		m := Member{ID: pm.ID, Name: pm.Name, IsLearner: pm.IsLearner}
		switch {
		case len(pm.ClientURLs) == 0:
			m.Err = errors.New("the member has not started: it has no client URL")
		default:
			m.ClientURL = pm.ClientURLs[0]
			urls = append(urls, m.ClientURL)
			idx = append(idx, len(s.Members))
		}
		s.Members = append(s.Members, m)
	}
	for i, st := range cl.Status(ctx, urls) {
		m := &s.Members[idx[i]]
		switch {
		case st.Err != nil:
			m.Err = st.Err
		case st.MemberID != m.ID:
			m.Err = fmt.Errorf("%s answers as member %s, not %s", m.ClientURL, client.FormatMemberID(st.MemberID), client.FormatMemberID(m.ID))
		default:
			m.IsLeader = st.IsLeader()
			m.DBSize, m.DBSizeInUse = st.DBSize, st.DBSizeInUse
			m.Alarms = st.Alarms
		}
	}
	slices.SortFunc(s.Members, func(a, b Member) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return s, nil
}
