package deploy

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the <daemon>.config parts of values.schema.json from configs/<daemon>.yaml")

// TestSchemaConfigKeys keeps values.schema.json's tracker/turnd/credapi.config in step with
// configs/<daemon>.yaml, so a mistyped daemon key fails `helm install` instead of the pod.
// The schema lists each documented key with its type; keys the chart sets itself stay
// forbidden. After a daemon's owner changes its config: go test -run TestSchemaConfigKeys -update
func TestSchemaConfigKeys(t *testing.T) {
	path := filepath.Join(chartDir(t), "values.schema.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	props := schema["properties"].(map[string]any)
	changed := false
	for _, d := range []string{"tracker", "turnd", "credapi"} {
		shipped, ok := shippedConfig(t, d)
		if !ok {
			t.Logf("configs/%s.yaml does not exist yet", d)
			continue
		}
		cfgSchema := props[d].(map[string]any)["properties"].(map[string]any)["config"].(map[string]any)
		want := configSchema(shipped, managedKeys[d])
		want["description"] = "Any key of configs/" + d + ".yaml except those the chart sets from its own values: " +
			strings.Join(managedKeys[d], ", ") + "."
		if reflect.DeepEqual(normalize(t, want), normalize(t, cfgSchema)) {
			continue
		}
		if !*update {
			t.Errorf("values.schema.json %s.config is out of step with configs/%s.yaml; run: cd test/deploy && go test -run TestSchemaConfigKeys -update", d, d)
			continue
		}
		props[d].(map[string]any)["properties"].(map[string]any)["config"] = want
		changed = true
	}
	if changed {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(schema); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("rewrote", path)
	}
}

// managedKeys are the keys the chart renders itself (from its own values, with matching
// ports, mounts and Secrets); <daemon>.config may not set them. Secrets are among them so
// they never land in a ConfigMap.
var managedKeys = map[string][]string{
	"tracker": {"listen", "ops.listen", "log.level", "log.format", "tls.cert", "tls.key", "trusted_proxies"},
	"turnd": {"listen", "ops.listen", "log.level", "log.format", "auth.secrets", "auth.secrets_file",
		"tls.cert", "tls.key", "tls.listen", "realm", "relay.ip", "relay.public_ip", "relay.public_ip_file",
		"relay.ipv6", "relay.public_ipv6", "relay.public_ipv6_file", "relay.min_port", "relay.max_port", "drain_timeout"},
	"credapi": {"listen", "ops.listen", "log.level", "log.format", "auth.secrets", "auth.secrets_file",
		"tls.cert", "tls.key", "api_keys", "ice.urls", "trackers", "cors.origins", "trusted_proxies"},
}

// configSchema derives a strict schema from a documented config: every key with the type
// of its documented default; the chart-managed keys are refused (false schemas).
func configSchema(cfg map[string]any, managed []string) map[string]any {
	s := objectSchema(cfg)
	for _, k := range managed {
		node := s
		parts := strings.Split(k, ".")
		for _, part := range parts[:len(parts)-1] {
			next, ok := node["properties"].(map[string]any)[part].(map[string]any)
			if !ok || next["properties"] == nil {
				next = map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{}}
				node["properties"].(map[string]any)[part] = next
			}
			node = next
		}
		node["properties"].(map[string]any)[parts[len(parts)-1]] = false
	}
	return s
}

func objectSchema(m map[string]any) map[string]any {
	props := map[string]any{}
	for k, v := range m {
		props[k] = valueSchema(v)
	}
	return map[string]any{"type": "object", "additionalProperties": false, "properties": props}
}

func valueSchema(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			return map[string]any{"type": "object"}
		}
		return objectSchema(x)
	case []any:
		return map[string]any{"type": "array"}
	case string:
		return map[string]any{"type": "string"}
	case bool:
		return map[string]any{"type": "boolean"}
	case float64:
		if x == float64(int64(x)) {
			return map[string]any{"type": "integer"}
		}
		return map[string]any{"type": "number"}
	}
	return true // null: anything
}

// normalize round-trips through JSON so both sides compare with the same Go types.
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
