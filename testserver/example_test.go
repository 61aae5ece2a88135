package testserver_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// In a test, use testserver.Start(t) instead: it stops the cluster when
	// the test ends.
	c, err := testserver.New(ctx, testserver.WithMembers(3))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	cli := c.Client()
	if _, err := cli.Put(ctx, "greeting", "hello"); err != nil {
		log.Fatal(err)
	}
	resp, err := cli.Get(ctx, "greeting")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(c.Members()), "members")
	fmt.Println(string(resp.Kvs[0].Value))
	// Output:
	// 3 members
	// hello
}

func ExampleCluster_KillLeader() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := testserver.New(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	old, err := c.KillLeader(ctx)
	if err != nil {
		log.Fatal(err)
	}
	leader, err := c.Leader(ctx) // waits for the election
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("new leader:", leader.ID != old.ID)

	// Bring the old leader back as a follower, with its data.
	if err := c.RestartMember(ctx, old.Name); err != nil {
		log.Fatal(err)
	}
	// Output:
	// new leader: true
}
