package controller

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec/source"
)

// idleSource is a Source for a controller whose loop never runs.
type idleSource struct{}

func (idleSource) Fetch(context.Context) (source.Revision, error) {
	return source.Revision{}, errors.New("not fetched")
}
func (idleSource) Retain(...string) error { return nil }
func (idleSource) String() string         { return "idle" }

// FuzzWebhooks sends the webhook handlers arbitrary bodies and headers:
// no panic, no 500, and no run triggered unless the delivery carried the
// secret (GitLab) or the body's HMAC under it (GitHub).
func FuzzWebhooks(f *testing.F) {
	body := []byte(`{"ref":"refs/heads/main","after":"8d1f5c2e9b7a4e0c3f6a1d2b5c8e9f0a1b2c3d4e"}`)
	f.Add(false, "push", true, "", "72d3162e-cc78-11e3-81ab-4c9367dc0958", body)
	f.Add(false, "ping", true, "", "", body)
	f.Add(false, "push", false, "sha256=00", "", body)
	f.Add(false, "push", false, "sha1=abcd", "x", []byte("{}"))
	f.Add(true, "Push Hook", true, "", "0b8f2b4e-5d3c-4c1e-9a7f-2e6d8c4b1a90", body)
	f.Add(true, "Merge Request Hook", true, "", "", body)
	f.Add(false, "pull_request", true, "", "", []byte(`{"action":"opened","pull_request":{"number":3,"head":{"sha":"8d1f5c2e9b7a4e0c3f6a1d2b5c8e9f0a1b2c3d4e"}}}`))
	f.Add(true, "Push Hook", false, secret+"x", "", []byte(nil))

	store, err := state.Open(f.TempDir(), state.Options{})
	if err != nil {
		f.Fatal(err)
	}
	c, err := New(Options{Source: idleSource{}, Load: loadFake, Reconciler: &fakeReconciler{}, Store: store, WebhookSecret: []byte(secret)})
	if err != nil {
		f.Fatal(err)
	}
	h := c.handler(ServeOptions{}.withDefaults())
	f.Fuzz(func(t *testing.T, gitlab bool, event string, sign bool, proof, delivery string, body []byte) {
		req := httptest.NewRequest("POST", "/hooks/github", bytes.NewReader(body))
		verified := false
		if gitlab {
			req.URL.Path = "/hooks/gitlab"
			if sign {
				proof = secret
			}
			req.Header["X-Gitlab-Token"] = []string{proof}
			req.Header["X-Gitlab-Event"] = []string{event}
			req.Header["X-Gitlab-Event-Uuid"] = []string{delivery}
			verified = subtle.ConstantTimeCompare([]byte(proof), []byte(secret)) == 1
		} else {
			if sign {
				proof = githubSig(string(body))
			}
			req.Header["X-Hub-Signature-256"] = []string{proof}
			req.Header["X-Github-Event"] = []string{event}
			req.Header["X-Github-Delivery"] = []string{delivery}
			verified = VerifyGitHub([]byte(secret), body, proof) == nil
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		triggered := false
		select {
		case <-c.triggers:
			triggered = true
		default:
		}
		switch w.Code {
		case http.StatusOK, http.StatusAccepted, http.StatusBadRequest, http.StatusUnauthorized,
			http.StatusRequestEntityTooLarge, http.StatusRequestTimeout, http.StatusServiceUnavailable:
		default:
			t.Fatalf("answer %d: %s", w.Code, w.Body)
		}
		if triggered && !verified {
			t.Fatalf("an unverified delivery triggered a run: %d %s", w.Code, w.Body)
		}
		if !verified && w.Code != http.StatusUnauthorized {
			t.Fatalf("an unverified delivery answered %d: %s", w.Code, w.Body)
		}
	})
}
