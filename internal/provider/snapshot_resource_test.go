package provider

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/snapshot"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/stocketcd"
)

const snapshotAddr = "etcd_snapshot.test"

func snapshotConfig(file string, extra ...string) string {
	return providerConfig() + fmt.Sprintf("resource \"etcd_snapshot\" \"test\" {\n  path = %s\n  %s\n}\n",
		hclString(file), strings.Join(extra, "\n  "))
}

// snapshotAttrs returns the state attributes of etcd_snapshot.test.
func snapshotAttrs(s *terraform.State) (map[string]string, error) {
	rs, ok := s.RootModule().Resources[snapshotAddr]
	if !ok {
		return nil, fmt.Errorf("%s not in state", snapshotAddr)
	}
	return rs.Primary.Attributes, nil
}

// checkSnapshotFile compares the state with the file: its sha256 and size,
// and the revision and key count Debian's etcdctl (or, without it,
// etcdutl's library) reads from it. minRev is the least revision the
// snapshot must hold; *rev receives the state's.
func checkSnapshotFile(t *testing.T, file string, minRev func() int64, rev *int64) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		a, err := snapshotAttrs(s)
		if err != nil {
			return err
		}
		sum, err := snapshot.FileSHA256(file)
		if err != nil {
			return err
		}
		fi, err := os.Stat(file)
		if err != nil {
			return err
		}
		if a["sha256"] != sum || a["size_bytes"] != strconv.FormatInt(fi.Size(), 10) || a["id"] != file {
			return fmt.Errorf("state %v; the file has sha256 %s and %d bytes", a, sum, fi.Size())
		}
		if fi.Mode().Perm() != 0o600 {
			return fmt.Errorf("%s has mode %v, want 0600", file, fi.Mode().Perm())
		}
		var st struct {
			Revision int64 `json:"revision"`
			TotalKey int   `json:"totalKey"`
		}
		if deb, err := stocketcd.Debian(); err == nil {
			cmd := exec.Command(deb.Etcdctl, "snapshot", "status", "-w", "json", file)
			cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("etcdctl (Debian) snapshot status: %v", err)
			}
			if err := json.Unmarshal(out, &st); err != nil {
				return err
			}
		} else {
			t.Logf("checking with etcdutl's library, not Debian's etcdctl: %v", err)
			ds, err := snapshot.ReadStatus(file)
			if err != nil {
				return err
			}
			st.Revision, st.TotalKey = ds.Revision, ds.TotalKey
		}
		got, _ := strconv.ParseInt(a["revision"], 10, 64)
		if got != st.Revision || got < minRev() {
			return fmt.Errorf("state revision %d, the file's %d, want at least %d", got, st.Revision, minRev())
		}
		if keys, _ := strconv.Atoi(a["total_keys"]); keys < 3 || keys > st.TotalKey {
			return fmt.Errorf("state total_keys %d, want at least the 3 written and at most etcdctl's count %d", keys, st.TotalKey)
		}
		*rev = got
		return nil
	}
}

// A snapshot is taken on create and again when triggers change or the file
// is changed or removed; import by path; delete_on_destroy is an update
// and makes destroy remove the file.
func TestAccSnapshotResource(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	var minRev, rev, firstRev int64
	put := func() {
		for i := range 3 {
			minRev = mustPut(t, fmt.Sprintf("%s%d", prefix, i), strconv.Itoa(int(minRev))).Header.Revision
		}
	}
	put()
	file := filepath.Join(t.TempDir(), "etcd.db")
	atLeast := func() int64 { return minRev }
	hex64 := knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]{64}$`))

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: func(*terraform.State) error {
			if _, err := os.Stat(file); !os.IsNotExist(err) {
				return fmt.Errorf("delete_on_destroy = true left %s (%v)", file, err)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: snapshotConfig(file, `triggers = { version = "1" }`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(snapshotAddr, tfjsonpath.New("sha256"), hex64),
					statecheck.ExpectKnownValue(snapshotAddr, tfjsonpath.New("taken_at"),
						knownvalue.StringRegexp(regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`))),
					statecheck.ExpectKnownValue(snapshotAddr, tfjsonpath.New("delete_on_destroy"), knownvalue.Bool(false)),
				},
				Check: resource.ComposeTestCheckFunc(checkSnapshotFile(t, file, atLeast, &rev), func(*terraform.State) error {
					firstRev = rev
					return nil
				}),
			},
			{
				ResourceName:            snapshotAddr,
				ImportState:             true,
				ImportStateId:           file,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"triggers"},
			},
			// New triggers: a new snapshot, after new writes.
			{
				PreConfig: put,
				Config:    snapshotConfig(file, `triggers = { version = "2" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(snapshotAddr, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				Check: resource.ComposeTestCheckFunc(checkSnapshotFile(t, file, atLeast, &rev), func(*terraform.State) error {
					if rev <= firstRev {
						return fmt.Errorf("the new snapshot holds revision %d, the first %d", rev, firstRev)
					}
					return nil
				}),
			},
			// The same configuration plans nothing.
			{
				Config:           snapshotConfig(file, `triggers = { version = "2" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			// A file changed behind Terraform's back: a new snapshot.
			{
				PreConfig: func() {
					f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
					if err != nil {
						t.Fatal(err)
					}
					_, _ = f.Write([]byte("tampered"))
					f.Close()
				},
				Config: snapshotConfig(file, `triggers = { version = "2" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(snapshotAddr, plancheck.ResourceActionCreate),
				}},
				Check: checkSnapshotFile(t, file, atLeast, &rev),
			},
			// Same size, different content: the sha256 tells.
			{
				PreConfig: func() {
					b, err := os.ReadFile(file)
					if err != nil {
						t.Fatal(err)
					}
					b[len(b)/2] ^= 0xff
					if err := os.WriteFile(file, b, 0o600); err != nil {
						t.Fatal(err)
					}
				},
				Config: snapshotConfig(file, `triggers = { version = "2" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(snapshotAddr, plancheck.ResourceActionCreate),
				}},
				Check: checkSnapshotFile(t, file, atLeast, &rev),
			},
			// A removed file: a new snapshot.
			{
				PreConfig: func() {
					if err := os.Remove(file); err != nil {
						t.Fatal(err)
					}
				},
				Config: snapshotConfig(file, `triggers = { version = "2" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(snapshotAddr, plancheck.ResourceActionCreate),
				}},
				Check: checkSnapshotFile(t, file, atLeast, &rev),
			},
			// delete_on_destroy is recorded in place.
			{
				Config: snapshotConfig(file, `triggers = { version = "2" }`, `delete_on_destroy = true`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(snapshotAddr, plancheck.ResourceActionUpdate),
				}},
				Check: checkSnapshotFile(t, file, atLeast, &rev),
			},
		},
	})
}

// By default destroy leaves the file.
func TestAccSnapshotKeptOnDestroy(t *testing.T) {
	accCluster(t)
	mustPut(t, keyPrefix(t)+"k", "v")
	file := filepath.Join(t.TempDir(), "kept.db")
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: func(*terraform.State) error {
			if _, err := snapshot.ReadStatus(file); err != nil {
				return fmt.Errorf("after destroy: %v, want the snapshot left in place", err)
			}
			return nil
		},
		Steps: []resource.TestStep{{
			Config: snapshotConfig(file),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(snapshotAddr, tfjsonpath.New("total_keys"), knownvalue.NotNull()),
			},
		}},
	})
}

// A path in a missing directory, or a directory, is refused at plan,
// naming path; nothing is written.
func TestAccSnapshotBadPath(t *testing.T) {
	accCluster(t)
	dir := t.TempDir()
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:      snapshotConfig(filepath.Join(dir, "missing", "etcd.db")),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Snapshot directory does not exist.*path.*` + regexp.QuoteMeta(filepath.Join(dir, "missing"))),
			},
			{
				Config:      snapshotConfig(dir),
				PlanOnly:    true,
				ExpectError: errorText("Snapshot path is a directory"),
			},
		},
	})
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("refused plans left %v in %s", entries, dir)
	}
}

// The documentation example takes its snapshot.
func TestAccSnapshotExample(t *testing.T) {
	c := accCluster(t)
	// Not parallel: the example has no provider block.
	t.Setenv("ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{{
			ConfigDirectory: config.StaticDirectory("../../examples/resources/etcd_snapshot"),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("etcd_snapshot.before_upgrade", tfjsonpath.New("sha256"),
					knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]{64}$`))),
			},
		}},
	})
}
