# etcdctl member list, with leader and learner flags.
data "etcd_members" "cluster" {}

output "members" {
  value = {
    for m in data.etcd_members.cluster.members :
    m.name => { id = m.id, leader = m.is_leader, learner = m.is_learner, client_urls = m.client_urls }
  }
}

# Fail the plan while a member has not started or is still a learner.
check "all_members_vote" {
  assert {
    condition     = alltrue([for m in data.etcd_members.cluster.members : m.name != "" && !m.is_learner])
    error_message = "Not every etcd member has joined as a voting member: ${jsonencode(data.etcd_members.cluster.members)}"
  }
}
