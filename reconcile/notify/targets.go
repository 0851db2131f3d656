package notify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Headers of the generic webhook.
const (
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256 of the body
	// under the target's secret, as GitHub signs its webhooks.
	HeaderSignature = "X-Fpgaops-Signature-256"
	HeaderEvent     = "X-Fpgaops-Event"
	HeaderDelivery  = "X-Fpgaops-Delivery"
)

// Sign is the value of HeaderSignature for body under secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// request is the HTTP request that delivers ev to the target.
func (t *Target) request(ev Event) (*http.Request, error) {
	var (
		body []byte
		err  error
		u    = t.URL
	)
	switch t.Type {
	case TypeSlack:
		body, err = json.Marshal(slackMessage(ev))
	case TypeAlertmanager:
		u = strings.TrimSuffix(u, "/") + "/api/v2/alerts"
		body, err = json.Marshal(alerts(ev))
	default:
		body, err = json.Marshal(ev)
	}
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("target %s: bad URL", t.Name) // the URL may be a secret
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fpgaops")
	if t.Type == TypeWebhook {
		req.Header.Set(HeaderEvent, string(ev.Kind))
		req.Header.Set(HeaderDelivery, ev.ID)
		if len(t.secret) > 0 {
			req.Header.Set(HeaderSignature, Sign(t.secret, body))
		}
	}
	if t.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+t.bearer)
	}
	return req, nil
}

// slack is an incoming webhook's message: plain text with Slack's
// markup, which escapes &, < and >.
type slack struct {
	Text string `json:"text"`
}

var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func slackMessage(ev Event) slack {
	icon := map[Severity]string{Critical: ":red_circle:", Warning: ":warning:", Info: ":large_green_circle:"}[ev.Severity]
	var b strings.Builder
	fmt.Fprintf(&b, "%s *fpgaops %s*: %s", icon, ev.Kind, slackEscape.Replace(ev.Summary))
	if ev.Detail != "" {
		fmt.Fprintf(&b, "\n%s", slackEscape.Replace(ev.Detail))
	}
	var facts []string
	if ev.Run != 0 {
		run := fmt.Sprintf("run %d", ev.Run)
		if ev.URL != "" {
			run = "<" + ev.URL + "|" + run + ">"
		}
		facts = append(facts, run)
	}
	if ev.Revision != "" {
		facts = append(facts, "revision `"+ev.Revision+"`")
	}
	facts = append(facts, slackEscape.Replace(ev.Source))
	fmt.Fprintf(&b, "\n%s", strings.Join(facts, " · "))
	return slack{Text: b.String()}
}

// alert is Alertmanager API v2's postableAlert.
type alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// alertNames name each kind's alert.
var alertNames = map[Kind]string{
	RunFailed: "FpgaopsRunFailed", ChangeFailed: "FpgaopsChangeFailed", VMDegraded: "FpgaopsVMDegraded",
	DriftFound: "FpgaopsDriftFound", RevisionRejected: "FpgaopsRevisionRejected", HeldTooLong: "FpgaopsChangeHeldTooLong",
	RolloutFailed: "FpgaopsRolloutFailed",
}

// alerts are the alerts an event posts. Alertmanager resolves an alert
// that is not posted again after its resolve_timeout; a recovery
// resolves the run-failed alert at once, posting it with an end.
func alerts(ev Event) []alert {
	labels := func(k Kind) map[string]string {
		l := map[string]string{"alertname": alertNames[k], "severity": string(k.Severity()), "source": ev.Source}
		for name, v := range map[string]string{"node": ev.Node, "vm": ev.VM, "change": ev.Change} {
			if v != "" && k != RunFailed {
				l[name] = v
			}
		}
		return l
	}
	if ev.Kind == Recovered {
		return []alert{{Labels: labels(RunFailed), StartsAt: ev.At, EndsAt: ev.At, GeneratorURL: ev.URL,
			Annotations: map[string]string{"summary": ev.Summary}}}
	}
	ann := map[string]string{"summary": ev.Summary}
	if ev.Detail != "" {
		ann["description"] = ev.Detail
	}
	if ev.Revision != "" {
		ann["revision"] = ev.Revision
	}
	if ev.Run != 0 {
		ann["run"] = fmt.Sprint(ev.Run)
	}
	return []alert{{Labels: labels(ev.Kind), Annotations: ann, StartsAt: ev.At, GeneratorURL: ev.URL}}
}
