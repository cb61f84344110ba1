package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/alecthomas/kong"
	"gopkg.in/yaml.v3"
)

// FileResolver returns a kong resolver that reads flag values from a YAML (.yaml, .yml) or TOML (.toml) file.
// Keys are flag names with - or _. A flag whose env twin is set is left alone, so the precedence is flags, then
// environment, then file, then defaults.
func FileResolver(path string) (kong.Resolver, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	values := map[string]any{}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		err = yaml.Unmarshal(b, &values)
	case ".toml":
		err = toml.Unmarshal(b, &values)
	default:
		return nil, fmt.Errorf("--config %s: unknown format; use .yaml, .yml or .toml", path)
	}
	if err != nil {
		return nil, fmt.Errorf("--config %s: %s", path, strings.ReplaceAll(err.Error(), "\n", " "))
	}
	known := map[string]bool{}
	return &fileResolver{values: values, known: known, path: path}, nil
}

type fileResolver struct {
	values map[string]any
	known  map[string]bool
	path   string
}

func (r *fileResolver) Validate(app *kong.Application) error {
	names := map[string]bool{"config": true}
	for _, f := range app.Flags {
		names[f.Name] = true
	}
	for _, cmd := range app.Children {
		for _, f := range cmd.Flags {
			names[f.Name] = true
		}
	}
	for k := range r.values {
		if !names[strings.ReplaceAll(k, "_", "-")] {
			return fmt.Errorf("--config %s: unknown key %q", r.path, k)
		}
	}
	return nil
}

func (r *fileResolver) Resolve(_ *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
	for _, e := range flag.Envs {
		if _, ok := os.LookupEnv(e); ok {
			return nil, nil
		}
	}
	for _, k := range []string{flag.Name, strings.ReplaceAll(flag.Name, "-", "_")} {
		if v, ok := r.values[k]; ok {
			if list, ok := v.([]any); ok {
				parts := make([]string, 0, len(list))
				for _, p := range list {
					parts = append(parts, fmt.Sprint(p))
				}
				return strings.Join(parts, ","), nil
			}
			return v, nil
		}
	}
	return nil, nil
}

// ConfigPath finds --config in args or GATEHOUSE_CONFIG, before kong parses, so the file can feed the parse.
func ConfigPath(args []string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v
		}
		if a == "--config" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return os.Getenv("GATEHOUSE_CONFIG")
}
