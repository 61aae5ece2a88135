# Every key under /app/settings/, from one map. A thousand keys plan in
# about a second, with one etcd request per refresh.
resource "etcd_key_prefix" "app" {
  prefix = "/app/settings/"

  values = {
    "log_level"     = "info"
    "replicas"      = "3"
    "db/host"       = "10.0.0.5"
    "db/port"       = "5432"
    "features.json" = jsonencode({ search = true, beta = false })
  }

  # Binary values, as base64.
  values_base64 = {
    "logo.png.gz" = base64gzip("not really a PNG")
  }
}

# Own the whole subtree: keys under the prefix that are not in the map are
# deleted, now and whenever someone adds one.
resource "etcd_key_prefix" "flags" {
  prefix           = "/app/flags/"
  delete_unmanaged = true

  values = { for name, on in var.flags : name => tostring(on) }
}

variable "flags" {
  type    = map(bool)
  default = { search = true, dark_mode = false }
}
