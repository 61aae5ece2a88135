# Ephemeral resources need Terraform 1.10+ or OpenTofu 1.11+.
#
# A marker that exists exactly while Terraform runs: granted when the run
# opens the lease, kept alive, and revoked (deleting the key) when the run
# ends. Plan and apply are separate runs, each with its own lease.
ephemeral "etcd_lease" "deploying" {
  ttl  = 30 # how long the marker outlives a run that is killed
  keys = { "/app/deploy/in-progress" = "terraform" }
}

# Ephemeral values go to provider blocks, other ephemeral resources,
# write-only arguments, locals and provisioners. Here a deployment script
# gets the lease ID, e.g. to attach its own keys with
# `etcdctl put --lease=$LEASE ...`.
resource "terraform_data" "deploy" {
  provisioner "local-exec" {
    command     = "echo deploying under lease $LEASE"
    environment = { LEASE = ephemeral.etcd_lease.deploying.id }
  }
}
