# Adopt authentication that is already enabled. The ID is always "auth".
# Destroying the resource afterwards disables authentication.
terraform import etcd_auth.this auth
