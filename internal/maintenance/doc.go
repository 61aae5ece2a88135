// Package maintenance keeps an etcd cluster's databases compact: it
// measures each member's database (db_size against db_size_in_use, read
// from the member's own client URL as the member list gives it), decides
// which members exceed the thresholds of a Policy, and defragments them one
// at a time, followers first and the leader last, never with the quorum at
// risk. After a defragmentation that freed space it disarms the member's
// NOSPACE alarm.
//
// etcd_maintenance and etcd_cluster's maintenance call it; it is tested
// against the real cluster of testserver, without Terraform.
package maintenance
