# Ephemeral resources need Terraform 1.10+ or OpenTofu 1.11+.
#
# Two pipelines that deploy the same thing take turns: each run waits for
# the lock (up to timeout), holds it while it works, and releases it at
# the end. A run that loses the lock midway fails and says so.
ephemeral "etcd_lock" "deploy" {
  name    = "/locks/deploy"
  holder  = "deploy pipeline" # shown to whoever waits: e.g. a CI job ID
  ttl     = 60                # how long a killed run keeps the lock
  timeout = "10m"             # how long to wait for it
}

# Terraform closes the lock once everything that refers to it is done, so
# the work it protects refers to it. The fencing token lets the deployment
# tell a stale holder apart: later holders always have larger tokens.
resource "terraform_data" "deploy" {
  provisioner "local-exec" {
    command     = "echo deploying with fencing token $TOKEN"
    environment = { TOKEN = ephemeral.etcd_lock.deploy.token }
  }
}
