package client

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// env returns a LookupEnv backed by a map.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestResolveEndpointsFromEnv(t *testing.T) {
	s, err := Config{LookupEnv: env(map[string]string{
		EnvEndpoints: " http://127.0.0.1:2379, http://127.0.0.2:2379 ,",
	})}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://127.0.0.1:2379", "http://127.0.0.2:2379"}
	if strings.Join(s.Endpoints, " ") != strings.Join(want, " ") {
		t.Fatalf("endpoints = %q, want %q", s.Endpoints, want)
	}
	if s.EndpointsSource.Env != EnvEndpoints {
		t.Fatalf("source = %v, want env %s", s.EndpointsSource, EnvEndpoints)
	}
	if s.DialTimeout != DefaultDialTimeout || s.RequestTimeout != DefaultRequestTimeout {
		t.Fatalf("timeouts = %s/%s, want defaults", s.DialTimeout, s.RequestTimeout)
	}
}

func TestResolveAttributeBeatsEnv(t *testing.T) {
	s, err := Config{
		Endpoints:   []string{"https://a:2379"},
		Username:    "alice",
		Password:    "pw",
		DialTimeout: 3 * time.Second,
		LookupEnv: env(map[string]string{
			EnvEndpoints:             "http://b:2379",
			EnvUser:                  "bob:other",
			EnvDialTimeout:           "9s",
			EnvPassword:              "envpw",
			EnvInsecureSkipTLSVerify: "not-a-bool-but-unused?",
		}),
		InsecureSkipTLSVerify: new(false),
	}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if s.Endpoints[0] != "https://a:2379" || s.Username != "alice" || s.password != "pw" || s.DialTimeout != 3*time.Second {
		t.Fatalf("attribute values lost: %s", s)
	}
}

func TestResolveNoEndpoints(t *testing.T) {
	_, err := Config{LookupEnv: env(nil)}.Resolve()
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Attribute != AttrEndpoints {
		t.Fatalf("err = %v, want a ConfigError on endpoints", err)
	}
	if !strings.Contains(err.Error(), "set endpoints") || !strings.Contains(err.Error(), EnvEndpoints) {
		t.Fatalf("error does not say what to do: %v", err)
	}
}

func TestResolveBadEndpoint(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Endpoints: []string{"http://ok:2379", "ftp://x:1"}}, "endpoints[1]: "},
		{Config{LookupEnv: env(map[string]string{EnvEndpoints: "http://ok:2379,http://"})}, "endpoints (entry 2 of ETCDCTL_ENDPOINTS)"},
		{Config{Endpoints: []string{"noport"}}, "endpoints[0]"},
		{Config{Endpoints: []string{"http://a:1/v3"}}, "has a path"},
	} {
		if tc.cfg.LookupEnv == nil {
			tc.cfg.LookupEnv = env(nil)
		}
		_, err := tc.cfg.Resolve()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Resolve(%v) = %v, want error containing %q", tc.cfg.Endpoints, err, tc.want)
		}
	}
	for _, ok := range []string{"127.0.0.1:2379", "http://[::1]:2379", "https://etcd.example:2379", "unix:///tmp/etcd.sock", "unixs:etcd.sock"} {
		if err := ValidateEndpoint(ok); err != nil {
			t.Errorf("ValidateEndpoint(%q) = %v", ok, err)
		}
	}
}

func TestResolveUserFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		cfg      Config
		user, pw string
		errAttr  string
		errWant  string
	}{
		{name: "user:password", env: map[string]string{EnvUser: "root:s3cret:x"}, user: "root", pw: "s3cret:x"},
		{name: "user and ETCDCTL_PASSWORD", env: map[string]string{EnvUser: "a:b", EnvPassword: "pw"}, user: "a:b", pw: "pw"},
		{name: "user and password attribute", env: map[string]string{EnvUser: "root"}, cfg: Config{Password: "pw"}, user: "root", pw: "pw"},
		{name: "username attribute, env password", env: map[string]string{EnvPassword: "pw"}, cfg: Config{Username: "u"}, user: "u", pw: "pw"},
		{name: "user without password", env: map[string]string{EnvUser: "root"}, errAttr: AttrPassword, errWant: `user "root" is set by username (from ETCDCTL_USER) but no password is`},
		{name: "password without user", cfg: Config{Password: "pw"}, errAttr: AttrUsername, errWant: "no user name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Endpoints = []string{"http://127.0.0.1:2379"}
			tc.cfg.LookupEnv = env(tc.env)
			s, err := tc.cfg.Resolve()
			if tc.errWant != "" {
				var ce *ConfigError
				if !errors.As(err, &ce) || ce.Attribute != tc.errAttr || !strings.Contains(err.Error(), tc.errWant) {
					t.Fatalf("err = %v, want ConfigError on %s containing %q", err, tc.errAttr, tc.errWant)
				}
				if strings.Contains(err.Error(), "pw") {
					t.Fatalf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Username != tc.user || s.password != tc.pw {
				t.Fatalf("user/password = %q/%q, want %q/%q", s.Username, s.password, tc.user, tc.pw)
			}
			if strings.Contains(s.String(), tc.pw) {
				t.Fatalf("String() leaks the password: %s", s)
			}
		})
	}
}

func TestResolveTimeouts(t *testing.T) {
	s, err := Config{Endpoints: []string{"h:1"}, LookupEnv: env(map[string]string{
		EnvDialTimeout: "2s", EnvCommandTimeout: "1m",
	})}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if s.DialTimeout != 2*time.Second || s.RequestTimeout != time.Minute {
		t.Fatalf("timeouts = %s/%s", s.DialTimeout, s.RequestTimeout)
	}

	_, err = Config{Endpoints: []string{"h:1"}, LookupEnv: env(map[string]string{EnvDialTimeout: "2"})}.Resolve()
	if err == nil || !strings.Contains(err.Error(), "dial_timeout (from ETCDCTL_DIAL_TIMEOUT)") || !strings.Contains(err.Error(), `"5s"`) {
		t.Fatalf("err = %v", err)
	}
	for _, bad := range []string{"", "5", "-1s", "0s", "soon"} {
		if _, err := ParseTimeout(bad); err == nil {
			t.Errorf("ParseTimeout(%q) accepted", bad)
		}
	}
}

func TestResolveInsecureFromEnv(t *testing.T) {
	s, err := Config{Endpoints: []string{"https://h:1"}, LookupEnv: env(map[string]string{EnvInsecureSkipTLSVerify: "true"})}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if s.TLS == nil || !s.TLS.InsecureSkipVerify || !s.TLS.Config().InsecureSkipVerify {
		t.Fatalf("insecure not applied: %+v", s.TLS)
	}
	_, err = Config{Endpoints: []string{"https://h:1"}, LookupEnv: env(map[string]string{EnvInsecureSkipTLSVerify: "maybe"})}.Resolve()
	if err == nil || !strings.Contains(err.Error(), "insecure_skip_tls_verify (from ETCDCTL_INSECURE_SKIP_TLS_VERIFY)") {
		t.Fatalf("err = %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	resolve := func(c Config) [32]byte {
		t.Helper()
		c.LookupEnv = env(nil)
		s, err := c.Resolve()
		if err != nil {
			t.Fatal(err)
		}
		return s.Fingerprint()
	}
	base := Config{Endpoints: []string{"http://a:1", "http://b:2"}, Username: "u", Password: "p"}
	// Two separately built but equal configurations must agree.
	same := Config{Endpoints: []string{"http://a:1", "http://b:2"}, Username: "u", Password: "p"}
	if resolve(base) != resolve(same) {
		t.Fatal("identical settings, different fingerprints")
	}
	for name, c := range map[string]Config{
		"password":  {Endpoints: base.Endpoints, Username: "u", Password: "q"},
		"endpoints": {Endpoints: []string{"http://a:1"}, Username: "u", Password: "p"},
		"username":  {Endpoints: base.Endpoints, Username: "v", Password: "p"},
		"timeout":   {Endpoints: base.Endpoints, Username: "u", Password: "p", RequestTimeout: time.Minute},
	} {
		if resolve(c) == resolve(base) {
			t.Errorf("%s: fingerprint unchanged", name)
		}
	}
}
