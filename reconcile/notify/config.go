package notify

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is what --notify-config holds, in YAML or JSON.
type Config struct {
	// HeldLongerThan is how long a change may be held by the maintenance
	// windows before a held-too-long event (default 24h).
	HeldLongerThan time.Duration `yaml:"heldLongerThan"`
	// DedupWindow: an event of the same kind and key is sent once within
	// it (default 1h).
	DedupWindow time.Duration `yaml:"dedupWindow"`
	// RatePerMinute bounds the events sent to each target (default 20,
	// with a burst as large).
	RatePerMinute int `yaml:"ratePerMinute"`
	// MaxPerKind bounds the events of one kind a run sends one by one
	// (default 10); the rest are summed up in one event.
	MaxPerKind int      `yaml:"maxPerKind"`
	Targets    []Target `yaml:"targets"`
}

// Defaults of a Config.
const (
	DefaultHeldLongerThan = 24 * time.Hour
	DefaultDedupWindow    = time.Hour
	DefaultRatePerMinute  = 20
	DefaultMaxPerKind     = 10
)

func (c Config) withDefaults() Config {
	if c.HeldLongerThan <= 0 {
		c.HeldLongerThan = DefaultHeldLongerThan
	}
	if c.DedupWindow <= 0 {
		c.DedupWindow = DefaultDedupWindow
	}
	if c.RatePerMinute <= 0 {
		c.RatePerMinute = DefaultRatePerMinute
	}
	if c.MaxPerKind <= 0 {
		c.MaxPerKind = DefaultMaxPerKind
	}
	return c
}

// Type is the kind of a target: the format it is sent in.
type Type string

const (
	// TypeWebhook POSTs each event as JSON, signed with HMAC-SHA256 in
	// X-Fpgaops-Signature-256 when a secret is set.
	TypeWebhook Type = "webhook"
	// TypeSlack POSTs to a Slack incoming webhook.
	TypeSlack Type = "slack"
	// TypeAlertmanager POSTs alerts to Alertmanager's /api/v2/alerts.
	TypeAlertmanager Type = "alertmanager"
)

// Target is one place events go.
type Target struct {
	Name string `yaml:"name"`
	Type Type   `yaml:"type"`
	// URL, or URLFile holding it: a Slack webhook's URL is itself a
	// secret. For Alertmanager it is the base URL (http://am:9093).
	URL     string `yaml:"url"`
	URLFile string `yaml:"urlFile"`
	// SecretFile holds the webhook's HMAC key.
	SecretFile string `yaml:"secretFile"`
	// BearerTokenFile holds a token sent as Authorization: Bearer.
	BearerTokenFile string `yaml:"bearerTokenFile"`
	// Events are the kinds the target gets; empty means all.
	Events []Kind `yaml:"events"`

	// Read from the files; never logged.
	secret []byte
	bearer string
}

func (t *Target) wants(k Kind) bool {
	if t.Type == TypeAlertmanager && alertNames[k] == "" && k != Recovered {
		return false // an alert is a problem: progress is not one
	}
	return len(t.Events) == 0 || slices.Contains(t.Events, k)
}

// maxConfig bounds the configuration file.
const maxConfig = 1 << 20

// Load reads a configuration file and the secret files it names, and
// checks it, reporting every mistake at once as file:line:col.
func Load(path string) (Config, error) {
	var cfg Config
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("notify config: %w", err)
	}
	if len(data) > maxConfig {
		return cfg, fmt.Errorf("notify config %s: over %d bytes", path, maxConfig)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("notify config %s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return cfg, fmt.Errorf("notify config %s: %w", path, err)
	}
	if err := cfg.check(path, targetNodes(&root)); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// targetNodes finds the mapping of each target, for positions.
func targetNodes(root *yaml.Node) []*yaml.Node {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "targets" && m.Content[i+1].Kind == yaml.SequenceNode {
			return m.Content[i+1].Content
		}
	}
	return nil
}

// check validates the targets and reads their files.
func (c *Config) check(path string, nodes []*yaml.Node) error {
	var errs []error
	at := func(i int, format string, args ...any) {
		pos := path
		if i < len(nodes) {
			pos = fmt.Sprintf("%s:%d:%d", path, nodes[i].Line, nodes[i].Column)
		}
		errs = append(errs, fmt.Errorf("%s: target %d (%s): %s", pos, i+1, c.Targets[i].Name, fmt.Sprintf(format, args...)))
	}
	if c.HeldLongerThan < 0 || c.DedupWindow < 0 || c.RatePerMinute < 0 || c.MaxPerKind < 0 {
		errs = append(errs, fmt.Errorf("%s: heldLongerThan, dedupWindow, ratePerMinute and maxPerKind must not be negative", path))
	}
	if len(c.Targets) == 0 {
		errs = append(errs, fmt.Errorf("%s: no targets", path))
	}
	names := map[string]bool{}
	for i := range c.Targets {
		t := &c.Targets[i]
		switch {
		case t.Name == "":
			at(i, "name is required")
		case names[t.Name]:
			at(i, "name %q is used twice", t.Name)
		}
		names[t.Name] = true
		switch t.Type {
		case TypeWebhook, TypeSlack, TypeAlertmanager:
		default:
			at(i, "type %q: want webhook, slack or alertmanager", t.Type)
		}
		for _, k := range t.Events {
			if !slices.Contains(Kinds, k) {
				at(i, "event %q: want one of %s", k, kindList())
			}
		}
		read := func(field, file string) string {
			if file == "" {
				return ""
			}
			b, err := os.ReadFile(file)
			if err != nil {
				at(i, "%s: %v", field, err)
				return ""
			}
			s := strings.TrimSpace(string(b))
			if s == "" {
				at(i, "%s %s: empty", field, file)
			}
			return s
		}
		switch {
		case t.URL != "" && t.URLFile != "":
			at(i, "give url or urlFile, not both")
		case t.URLFile != "":
			t.URL = read("urlFile", t.URLFile)
		case t.URL == "":
			at(i, "url or urlFile is required")
		}
		if t.URL != "" {
			if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				// The URL may be a secret: say what is wrong, not what it is.
				at(i, "url: want an http:// or https:// URL")
			}
		}
		if t.SecretFile != "" && t.Type != TypeWebhook {
			at(i, "secretFile is for webhook targets")
		}
		t.secret = []byte(read("secretFile", t.SecretFile))
		t.bearer = read("bearerTokenFile", t.BearerTokenFile)
	}
	return errors.Join(errs...)
}

func kindList() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}
