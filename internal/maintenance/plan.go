package maintenance

import (
	"fmt"
	"slices"
)

// Defrag is a defragmentation Plan decided on.
type Defrag struct {
	Member Member
	// Why says how much is free, e.g. "41% free: 3.2 MiB of 7.8 MiB".
	Why string
}

// String is what a plan shows, e.g. "defragment etcd-2 (ID 8e9e05c52164694d): 41% free: 3.2 MiB of 7.8 MiB".
func (d Defrag) String() string { return "defragment " + d.Member.Label() + ": " + d.Why }

// Skip is a member Plan or Run left alone although it may need a
// defragmentation, and why: it is down, or its defragmentation would put
// the quorum at risk.
type Skip struct {
	Member Member
	Why    string
}

func (s Skip) String() string { return s.Member.Label() + " is not defragmented: " + s.Why }

// Plan decides which members of s to defragment under p, in the order Run
// takes them: learners, then followers, then the leader; by name within
// each. A member that is down, or whose defragmentation would leave fewer
// healthy voting members than a quorum, is skipped.
func (p Policy) Plan(s Survey) (todo []Defrag, skipped []Skip) {
	for _, m := range s.Members {
		if m.Err != nil {
			skipped = append(skipped, Skip{Member: m, Why: fmt.Sprintf("it cannot be measured (%v)", m.Err)})
			continue
		}
		over, why := p.exceeded(m)
		if !over {
			continue
		}
		if ok, risk := s.quorumSafe(m.ID); !ok {
			skipped = append(skipped, Skip{Member: m, Why: why + ", but " + risk})
			continue
		}
		todo = append(todo, Defrag{Member: m, Why: why})
	}
	slices.SortStableFunc(todo, func(a, b Defrag) int { return rank(a.Member) - rank(b.Member) })
	return todo, skipped
}

// rank orders members for defragmentation: learners, followers, leader.
func rank(m Member) int {
	switch {
	case m.IsLearner:
		return 0
	case m.IsLeader:
		return 2
	}
	return 1
}
