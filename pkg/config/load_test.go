package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

type testNested struct {
	Items []string `mapstructure:"items"`
	Limit int      `mapstructure:"limit"`
}

type testConfig struct {
	Common  `mapstructure:",squash"`
	Wait    time.Duration `mapstructure:"wait"`
	Nested  testNested    `mapstructure:"nested"`
	Enabled bool          `mapstructure:"enabled"`
}

func (c *testConfig) Validate(p *Problems) {
	c.ValidateCommon(p)
	CheckPositive(p, "nested.limit", c.Nested.Limit)
}

func testDefaults() testConfig {
	return testConfig{
		Common: Common{Listen: "0.0.0.0:1", Ops: Ops{Listen: "127.0.0.1:2"}, Log: Log{Level: "info", Format: "text"}},
		Wait:   time.Second,
		Nested: testNested{Items: []string{"a", "b", "c"}, Limit: 5},
	}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLoadPrecedence(t *testing.T) {
	file := writeFile(t, "listen: 127.0.0.1:10\nnested:\n  items: [x]\n  limit: 7\nwait: 3s\n")
	tests := []struct {
		name string
		args []string
		env  []string
		want func(c testConfig) bool
	}{
		{"defaults", nil, nil, func(c testConfig) bool {
			return reflect.DeepEqual(c, testDefaults())
		}},
		{"file replaces lists, not merges", []string{"--config", file}, nil, func(c testConfig) bool {
			return c.Listen == "127.0.0.1:10" && reflect.DeepEqual(c.Nested.Items, []string{"x"}) && c.Wait == 3*time.Second
		}},
		{"env beats file", []string{"--config", file}, []string{"SWITCHBOARD_T_NESTED_LIMIT=9", "SWITCHBOARD_T_NESTED_ITEMS=p, q"}, func(c testConfig) bool {
			return c.Nested.Limit == 9 && reflect.DeepEqual(c.Nested.Items, []string{"p", "q"})
		}},
		{"flag beats env", []string{"--config", file, "--nested.limit=11", "--enabled=true"}, []string{"SWITCHBOARD_T_NESTED_LIMIT=9"}, func(c testConfig) bool {
			return c.Nested.Limit == 11 && c.Enabled
		}},
		{"empty env list", nil, []string{"SWITCHBOARD_T_NESTED_ITEMS="}, func(c testConfig) bool {
			return len(c.Nested.Items) == 0
		}},
		{"other daemons' env ignored", nil, []string{"SWITCHBOARD_OTHER_X=1"}, func(c testConfig) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Load[testConfig]("t", tt.args, tt.env, testDefaults())
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name string
		file string
		args []string
		env  []string
		want []string
	}{
		{"unknown file key", "listen: 127.0.0.1:1\nlisten_port: 3\n", nil, nil, []string{"listen_port"}},
		{"unknown env key", "", nil, []string{"SWITCHBOARD_T_BOGUS=1"}, []string{"SWITCHBOARD_T_BOGUS"}},
		{"every problem at once", "", []string{"--listen=x", "--log.format=xml", "--nested.limit=0"}, nil,
			[]string{`listen ("x")`, `log.format ("xml"): one of text, json`, "nested.limit (0)"}},
		{"bad duration", "", []string{"--wait=soon"}, nil, []string{"wait"}},
		{"bad number", "nested:\n  limit: many\n", nil, nil, []string{"limit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config", writeFile(t, tt.file)}, args...)
			}
			_, _, err := Load[testConfig]("t", args, tt.env, testDefaults())
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("err = %v, want *InvalidError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadFlags(t *testing.T) {
	_, fl, err := Load[testConfig]("t", []string{"--version"}, nil, testDefaults())
	if err != nil || !fl.Version {
		t.Fatalf("--version: %v %+v", err, fl)
	}
	if _, _, err := Load[testConfig]("t", []string{"--nope"}, nil, testDefaults()); err == nil {
		t.Fatal("unknown flag must fail")
	}
	if _, _, err := Load[testConfig]("t", []string{"stray"}, nil, testDefaults()); err == nil {
		t.Fatal("stray argument must fail")
	}
	if _, _, err := Load[testConfig]("t", []string{"--config", "/does/not/exist.yaml"}, nil, testDefaults()); err == nil {
		t.Fatal("missing file must fail")
	}
}

func TestKeys(t *testing.T) {
	got := Keys(testDefaults())
	want := []string{"enabled", "listen", "log.format", "log.level", "nested.items", "nested.limit", "ops.listen", "wait"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Keys = %v, want %v", got, want)
	}
}

func TestCheckers(t *testing.T) {
	var p Problems
	CheckHostPort(&p, "a", ":8000")
	CheckHostPort(&p, "b", "[::1]:8000")
	CheckHostPort(&p, "c", "localhost:1")
	if !p.Empty() {
		t.Fatalf("valid addresses refused: %v", p.List())
	}
	CheckHostPort(&p, "d", "example.com:80")
	CheckHostPort(&p, "e", "1.2.3.4:99999")
	CheckRange(&p, "f", 11, 1, 10)
	pf := ParsePrefixes(&p, "g", []string{"10.0.0.1/8", "::1", "nope"})
	if len(p.List()) != 4 || len(pf) != 2 || pf[0].String() != "10.0.0.0/8" {
		t.Fatalf("problems %v prefixes %v", p.List(), pf)
	}
}
