package cluster

import (
	"reflect"
	"strings"
	"testing"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership"
)

// Every member reports the whole cluster's alarms, so alarmed must merge
// the reports, name each alarmed member once, and still name a member the
// member list no longer holds. The error says how to clear every alarm it
// names, an unknown one included.
func TestAlarmedMergesMemberReports(t *testing.T) {
	member := func(id uint64, name string, alarms ...membership.Alarm) membership.MemberHealth {
		return membership.MemberHealth{Member: membership.Member{ID: id, Name: name}, Alarms: alarms}
	}
	if e := alarmed(membership.Health{Members: []membership.MemberHealth{member(1, "n1"), member(2, "n2")}}); e != nil {
		t.Fatalf("no alarms reported, got %v", e)
	}
	h := membership.Health{Members: []membership.MemberHealth{
		member(1, "n1", membership.Alarm{MemberID: 1, Type: "NOSPACE"}, membership.Alarm{MemberID: 2, Type: "NOSPACE"},
			membership.Alarm{MemberID: 0xab, Type: "CORRUPT"}),
		member(2, "n2", membership.Alarm{MemberID: 1, Type: "NOSPACE"}, membership.Alarm{MemberID: 2, Type: "NOSPACE"},
			membership.Alarm{MemberID: 2, Type: "SOMETHING"}),
	}}
	e := alarmed(h)
	if e == nil {
		t.Fatal("alarms reported, got no AlarmError")
	}
	want := map[string][]string{"NOSPACE": {"n1", "n2"}, "CORRUPT": {"member " + membership.FormatID(0xab)}, "SOMETHING": {"n2"}}
	if !reflect.DeepEqual(e.Alarms, want) {
		t.Fatalf("alarms %v, want %v", e.Alarms, want)
	}
	msg := e.Error()
	for _, s := range []string{
		"etcd's CORRUPT alarm is raised for member ab", "etcd's NOSPACE alarm is raised for n1, n2",
		"etcd's SOMETHING alarm is raised for n2", "add a maintenance block", "replace the corrupt member",
		"etcd reports alarm SOMETHING", "Then apply again.",
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("error lacks %q:\n%s", s, msg)
		}
	}
}
