# Import an existing role by its name. Its permissions are read from etcd,
# a prefix shown as prefix = true.
terraform import etcd_role.app app

# With Terraform or OpenTofu 1.12+, an import block can name it by its
# resource identity instead of the ID:
#
#   import {
#     to       = etcd_role.app
#     identity = { name = "app" }
#   }
