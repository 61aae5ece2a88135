package recipes_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
)

// A Cache mirrors a prefix locally. A handler sees every change in
// revision order; WaitForRevision makes the cache's reads reflect one's
// own write.
func ExampleCache() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	if _, err := cli.Put(ctx, "/config/color", "blue"); err != nil {
		log.Fatal(err)
	}
	events := make(chan recipes.CacheEvent, 16)
	cache, err := recipes.NewCache(cli, "/config", recipes.WithCacheHandler(func(ev recipes.CacheEvent) {
		events <- ev
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	// The first read delivers every key as an add.
	if err := cache.WaitForRevision(ctx, 0); err != nil {
		log.Fatal(err)
	}

	resp, err := cli.Put(ctx, "/config/color", "green")
	if err != nil {
		log.Fatal(err)
	}
	// Read your own write from memory.
	if err := cache.WaitForRevision(ctx, resp.Header.Revision); err != nil {
		log.Fatal(err)
	}
	kv, rev, _ := cache.Get("/config/color")
	fmt.Println(kv.Value, rev >= resp.Header.Revision)

	for range 2 {
		ev := <-events
		fmt.Println(ev.Type, ev.KV.Key, ev.KV.Value)
	}

	_, err = recipes.NewCache(cli, "")
	fmt.Println(errors.Is(err, recipes.ErrInvalidArgument))
	// Output:
	// green true
	// add /config/color blue
	// update /config/color green
	// true
}

// A Group is a service registry: members join with their address, bound
// to their session, and etcd's gRPC resolver dials "etcd:///" + Target().
func ExampleGroup() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	session, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()

	g, err := recipes.NewGroup(cli, "services/api")
	if err != nil {
		log.Fatal(err)
	}
	m, err := g.Join(ctx, session, "10.0.0.7:8080", map[string]string{"zone": "eu-1"})
	if err != nil {
		log.Fatal(err)
	}
	members, rev, err := g.Members(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, mb := range members {
		fmt.Println(mb.Name, string(mb.Metadata), rev >= mb.Revision)
	}
	fmt.Println("dial", "etcd:///"+g.Target())

	if _, err := m.Leave(ctx); err != nil {
		log.Fatal(err)
	}
	members, _, _ = g.Members(ctx)
	fmt.Println(len(members), "members after Leave")
	// Output:
	// 10.0.0.7:8080 {"zone":"eu-1"} true
	// dial etcd:///services/api
	// 0 members after Leave
}

// A Counter adds without losing updates, however many clients add at
// once.
func ExampleCounter() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	c, err := recipes.NewCounter(cli, "/stats/requests")
	if err != nil {
		log.Fatal(err)
	}
	v, err := c.Add(ctx, 3)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v)
	swapped, err := c.CompareAndSwap(ctx, 3, 10)
	if err != nil {
		log.Fatal(err)
	}
	v, _, err = c.Get(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(swapped, v)

	if _, err := cli.Put(ctx, "/stats/name", "web"); err != nil {
		log.Fatal(err)
	}
	words, _ := recipes.NewCounter(cli, "/stats/name")
	_, err = words.Add(ctx, 1)
	fmt.Println(errors.Is(err, recipes.ErrNotNumber))
	// Output:
	// 3
	// true 10
	// true
}
