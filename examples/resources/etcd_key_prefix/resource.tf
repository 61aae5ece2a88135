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

# Tens of thousands of keys: one JSON document of strings instead of a map.
# Terraform handles it as one string, so plans stay fast at 100,000 keys.
# Keep it in a file (file("${path.module}/catalog.json")) or build it with
# jsonencode, as here.
resource "etcd_key_prefix" "catalog" {
  prefix = "/app/catalog/"
  values_json = jsonencode({
    "sku-0001" = "widget"
    "sku-0002" = "gadget"
  })
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

# Keys that are already there with exactly these values are taken over
# without a write; keep_on_destroy leaves the keys in etcd on destroy.
resource "etcd_key_prefix" "limits" {
  prefix          = "/app/limits/"
  values          = { "rps" = "100", "burst" = "200" }
  adopt_if_equal  = true
  keep_on_destroy = true
}

# Secrets: values_wo (Terraform/OpenTofu 1.11+) is written and never stored
# in the plan or state; change values_wo_version to write it again.
#
# resource "etcd_key_prefix" "credentials" {
#   prefix            = "/app/credentials/"
#   values_wo         = { "db" = var.db_password, "api" = var.api_token }
#   values_wo_version = 1
# }
