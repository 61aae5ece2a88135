# etcdctl endpoint status, for every endpoint of the provider.
data "etcd_endpoint_status" "cluster" {}

locals {
  statuses = data.etcd_endpoint_status.cluster.statuses
  leaders  = [for s in local.statuses : s.member_id if s.is_leader == true]
}

output "leader" {
  value = one(local.leaders)
}

# Fail the plan when a member is down or raises an alarm.
check "cluster_healthy" {
  assert {
    condition     = alltrue([for s in local.statuses : s.error == null && length(s.errors) == 0])
    error_message = "An etcd member is unreachable or reports errors: ${jsonencode([for s in local.statuses : { endpoint = s.endpoint, error = s.error, errors = s.errors }])}"
  }
}

# Warn before a member's database fills up: etcd raises NOSPACE at the quota
# (--quota-backend-bytes, 2 GiB by default) and then refuses every write.
# A fragmented database gets space back with `etcdctl defrag`.
check "database_space" {
  assert {
    condition     = alltrue([for s in local.statuses : s.error != null || (length(s.alarms) == 0 && s.fragmentation < 0.5)])
    error_message = "Alarms or fragmentation: ${jsonencode([for s in local.statuses : { endpoint = s.endpoint, alarms = s.alarms, fragmentation = s.fragmentation, db_size = s.db_size }])}"
  }
}
