# Import an existing user by its name. Its roles are read from etcd; etcd
# never reveals a password, so none is in the state. To go on from there:
#
#   - with password (or password_wo and password_wo_version) in the
#     configuration, `terraform apply` sets that password: the plan shows
#     the change;
#   - with none of password, password_wo and no_password, the provider
#     leaves the existing password alone and manages only the roles.
terraform import etcd_user.ci ci

# With Terraform or OpenTofu 1.12+, an import block can name it by its
# resource identity instead of the ID:
#
#   import {
#     to       = etcd_user.ci
#     identity = { name = "ci" }
#   }
