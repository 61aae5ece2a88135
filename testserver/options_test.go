package testserver_test

import (
	"context"
	"strings"
	"testing"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// Options out of range fail New before any member starts, naming the option.
func TestOptionsOutOfRange(t *testing.T) {
	for _, tc := range []struct {
		opt  testserver.Option
		want string
	}{
		{testserver.WithMembers(0), "WithMembers(0)"},
		{testserver.WithQuotaBackendBytes(-1), "WithQuotaBackendBytes(-1)"},
		{testserver.WithBcryptCost(3), "WithBcryptCost(3)"},
		{testserver.WithBcryptCost(32), "WithBcryptCost(32)"},
	} {
		c, err := testserver.New(context.Background(), tc.opt)
		if err == nil {
			c.Close()
			t.Fatalf("New with %s started a cluster", tc.want)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New with %s: %v", tc.want, err)
		}
	}
}
