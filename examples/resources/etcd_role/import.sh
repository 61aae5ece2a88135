# Import an existing role by its name. Its permissions are read from etcd,
# a prefix shown as prefix = true.
terraform import etcd_role.app app
