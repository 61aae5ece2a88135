# Import an existing key by its name. The value is read into `value`, or into
# `value_base64` when it is not valid UTF-8.
terraform import etcd_key.example /app/config

# With Terraform or OpenTofu 1.12+, an import block can name it by its
# resource identity instead of the ID:
#
#   import {
#     to       = etcd_key.example
#     identity = { key = "/app/config" }
#   }
