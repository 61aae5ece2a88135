# Import a prefix: the resource adopts every key under it. Keys whose
# values are valid UTF-8 go into `values`, the others into `values_base64`.
terraform import etcd_key_prefix.app /app/settings/

# With Terraform or OpenTofu 1.12+, an import block can name it by its
# resource identity instead of the ID:
#
#   import {
#     to       = etcd_key_prefix.app
#     identity = { prefix = "/app/settings/" }
#   }
