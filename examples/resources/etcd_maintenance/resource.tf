# Defragment the members of the provider's cluster whose database is more
# than 30% free, or has more than 512 MiB free. A refresh measures every
# member; the plan lists the members it will defragment, e.g.
#
#   ~ pending_defragmentation = [
#       - "defragment etcd-2 (ID 8e9e05c52164694d): 41% free: 3.2 GiB of 7.8 GiB",
#     ]
#
# and the apply defragments them one at a time, the leader last. Run it on a
# schedule (e.g. `terraform apply` nightly) to keep the databases compact.
resource "etcd_maintenance" "this" {
  defragment_when_free_over       = "30%"
  defragment_when_free_bytes_over = "512MiB"

  # After a defragmentation that freed space, disarm the member's NOSPACE
  # alarm so that the cluster accepts writes again (the default).
  disarm_nospace = true
}

output "pending_defragmentation" {
  value = etcd_maintenance.this.pending_defragmentation
}
