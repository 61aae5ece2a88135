# Import an existing key by its name. The value is read into `value`, or into
# `value_base64` when it is not valid UTF-8.
terraform import etcd_key.example /app/config
