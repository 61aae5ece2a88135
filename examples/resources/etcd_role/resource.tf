# A role for an application: full access to its own keys, read access to
# one shared key and to a range of another tree.
resource "etcd_role" "app" {
  name = "app"
  permissions = [
    # Every key that starts with /app/ (etcd stores this as the range
    # [/app/, /app0); range_end = "/app0" is the same permission).
    { key = "/app/", prefix = true, access = "readwrite" },
    # One key.
    { key = "/config/shared", access = "read" },
    # The keys from /logs/2024-01 up to, not including, /logs/2024-07.
    { key = "/logs/2024-01", range_end = "/logs/2024-07", access = "read" },
  ]
}

# A role without permissions yet, e.g. to grant to users first.
resource "etcd_role" "auditor" {
  name = "auditor"
}
