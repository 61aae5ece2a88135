package provider

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership"
)

// checkMembersDataSource compares data.etcd_members.<name> with what a
// plain clientv3 MemberList and Status report.
func checkMembersDataSource(addr string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[addr]
		if !ok {
			return fmt.Errorf("%s not in state", addr)
		}
		a := rs.Primary.Attributes
		cli := testCluster.Client()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ml, err := cli.MemberList(ctx)
		if err != nil {
			return err
		}
		st, err := cli.Status(ctx, testCluster.Endpoints()[0])
		if err != nil {
			return err
		}
		if got, want := a["cluster_id"], membership.FormatID(ml.Header.ClusterId); got != want {
			return fmt.Errorf("cluster_id %s, want %s", got, want)
		}
		if got, want := a["leader"], membership.FormatID(st.Leader); got != want {
			return fmt.Errorf("leader %s, want %s", got, want)
		}
		if got := a["members.#"]; got != strconv.Itoa(len(ml.Members)) {
			return fmt.Errorf("members.# = %s, want %d", got, len(ml.Members))
		}
		byID := map[string]int{}
		for i := range len(ml.Members) {
			byID[a[fmt.Sprintf("members.%d.id", i)]] = i
		}
		for _, m := range ml.Members {
			i, ok := byID[membership.FormatID(m.ID)]
			if !ok {
				return fmt.Errorf("member %x missing", m.ID)
			}
			p := fmt.Sprintf("members.%d.", i)
			want := map[string]string{
				"name":          m.Name,
				"is_learner":    strconv.FormatBool(m.IsLearner),
				"is_leader":     strconv.FormatBool(m.ID == st.Leader),
				"peer_urls.#":   strconv.Itoa(len(m.PeerURLs)),
				"client_urls.#": strconv.Itoa(len(m.ClientURLs)),
			}
			if len(m.PeerURLs) > 0 {
				want["peer_urls.0"] = m.PeerURLs[0]
			}
			if len(m.ClientURLs) > 0 {
				want["client_urls.0"] = m.ClientURLs[0]
			}
			for k, v := range want {
				if a[p+k] != v {
					return fmt.Errorf("%s%s = %q, want %q", p, k, a[p+k], v)
				}
			}
		}
		return nil
	}
}

func TestAccMembersDataSource(t *testing.T) {
	accCluster(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{{
			Config: providerConfig() + `data "etcd_members" "all" {}` + "\n",
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttr("data.etcd_members.all", "members.#", "3"),
				checkMembersDataSource("data.etcd_members.all"),
			),
		}},
	})
}
