package config

import (
	"fmt"
	"strings"
)

// Problems collects every validation failure so an operator sees them all at once,
// each as "key (value): what is allowed".
type Problems struct {
	list []string
}

// Add records that key holds value, which is not allowed; allowed says what is.
func (p *Problems) Add(key string, value any, allowed string) {
	p.list = append(p.list, fmt.Sprintf("%s (%v): %s", key, value, allowed))
}

// Addf records a problem with a free-form explanation.
func (p *Problems) Addf(key string, value any, format string, args ...any) {
	p.Add(key, value, fmt.Sprintf(format, args...))
}

// Empty reports whether nothing was wrong.
func (p *Problems) Empty() bool { return len(p.list) == 0 }

// List returns the problems in the order found.
func (p *Problems) List() []string { return append([]string(nil), p.list...) }

// Err returns nil when there are no problems, otherwise an *InvalidError listing them.
func (p *Problems) Err() error {
	if p.Empty() {
		return nil
	}
	return &InvalidError{Problems: p.List()}
}

// InvalidError is returned by Load when the configuration does not validate.
type InvalidError struct {
	Problems []string
}

func (e *InvalidError) Error() string {
	return "invalid configuration:\n  " + strings.Join(e.Problems, "\n  ")
}
