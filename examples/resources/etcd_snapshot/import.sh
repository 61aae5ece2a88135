# Import a snapshot file by its path. revision, total_keys and sha256 are
# read from the file; triggers are not known and stay empty.
terraform import etcd_snapshot.before_upgrade /var/backups/etcd/etcd-before-3.6.4.db
