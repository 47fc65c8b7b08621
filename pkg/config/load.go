// Package config loads a daemon's configuration from defaults, a YAML file, the environment
// (SWITCHBOARD_<DAEMON>_<KEY>, "." written as "_") and flags (--<key>=value), in rising
// precedence, decodes it strictly and validates it.
package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Validator is implemented by every daemon configuration.
type Validator interface {
	Validate(p *Problems)
}

// Flags are the command-line switches that are not configuration keys.
type Flags struct {
	ConfigFile  string
	CheckConfig bool
	Version     bool
}

// ErrHelp is returned when --help was asked for; usage has been printed.
var ErrHelp = pflag.ErrHelp

// Load builds a T from defaults, then the file named by --config, then the environment, then flags.
// It returns an *InvalidError listing every problem when validation fails.
func Load[T any, PT interface {
	*T
	Validator
}](daemon string, args, environ []string, defaults T) (T, Flags, error) {
	var zero T
	keys := map[string]any{}
	flatten("", reflect.ValueOf(defaults), keys)

	fs := pflag.NewFlagSet(daemon, pflag.ContinueOnError)
	fs.SortFlags = false
	var fl Flags
	fs.StringVar(&fl.ConfigFile, "config", "", "YAML configuration file")
	fs.BoolVar(&fl.CheckConfig, "check-config", false, "load and validate the configuration, print the result and exit")
	fs.BoolVar(&fl.Version, "version", false, "print the version and exit")
	names := sortedKeys(keys)
	for _, k := range names {
		fs.String(k, "", fmt.Sprintf("override %s (default %v)", k, display(keys[k])))
	}
	if err := fs.Parse(args); err != nil {
		return zero, fl, fmt.Errorf("command line: %w", err)
	}
	if fs.NArg() > 0 {
		return zero, fl, fmt.Errorf("command line: unexpected argument %q (flags take the form --key=value)", fs.Arg(0))
	}
	if fl.Version {
		return zero, fl, nil
	}

	v := viper.New()
	for _, k := range names {
		v.SetDefault(k, keys[k])
	}
	if fl.ConfigFile != "" {
		v.SetConfigFile(fl.ConfigFile)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return zero, fl, fmt.Errorf("config file %s: %w", fl.ConfigFile, err)
		}
	}
	prefix := "SWITCHBOARD_" + strings.ToUpper(daemon)
	var problems Problems
	envKeys := map[string]string{}
	for _, k := range names {
		envKeys[prefix+"_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))] = k
	}
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, prefix+"_") {
			continue
		}
		k, ok := envKeys[name]
		if !ok {
			problems.Add(name, quote(value), "not a known key; see configs/"+daemon+".yaml for the keys")
			continue
		}
		v.Set(k, value)
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if _, isKey := keys[f.Name]; isKey && f.Changed {
			v.Set(f.Name, f.Value.String())
		}
	})

	out := new(T)
	err := v.UnmarshalExact(out, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		stringToSliceHook,
	)))
	if err != nil {
		problems.list = append(problems.list, decodeProblems(err)...)
		return zero, fl, problems.Err()
	}
	PT(out).Validate(&problems)
	return *out, fl, problems.Err()
}

// stringToSliceHook splits comma-separated environment and flag values into lists,
// trimming spaces and dropping empty entries so "" means an empty list.
func stringToSliceHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Slice {
		return data, nil
	}
	s := data.(string)
	parts := []string{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			parts = append(parts, part)
		}
	}
	return parts, nil
}

func decodeProblems(err error) []string {
	var de *mapstructure.DecodeError
	if errors.As(err, &de) {
		return []string{de.Error()}
	}
	msg := err.Error()
	lines := []string{}
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "*"))
		if l == "" || strings.HasPrefix(l, "decoding failed due to") || strings.HasSuffix(l, "error(s) decoding:") {
			continue
		}
		if strings.Contains(l, "has invalid keys:") {
			l = "unknown key(s):" + l[strings.Index(l, "has invalid keys:")+len("has invalid keys:"):] + " (see configs/ for the keys each daemon accepts)"
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		lines = []string{msg}
	}
	return lines
}

// flatten records every leaf of a config struct under its dotted mapstructure key.
func flatten(prefix string, v reflect.Value, out map[string]any) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("mapstructure")
		name, opts, _ := strings.Cut(tag, ",")
		fv := v.Field(i)
		if opts == "squash" {
			flatten(prefix, fv, out)
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		if fv.Kind() == reflect.Struct && fv.Type().PkgPath() != "time" {
			flatten(key, fv, out)
			continue
		}
		out[key] = fv.Interface()
	}
}

// Keys lists every configuration key of a defaults value, sorted; used by tests that check
// that the documented YAML names every key.
func Keys(defaults any) []string {
	keys := map[string]any{}
	flatten("", reflect.ValueOf(defaults), keys)
	return sortedKeys(keys)
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func display(v any) string {
	if s, ok := v.([]string); ok {
		return "[" + strings.Join(s, ",") + "]"
	}
	return fmt.Sprint(v)
}

// Environ is os.Environ, named so callers read as "the process environment".
func Environ() []string { return os.Environ() }
