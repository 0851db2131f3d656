package openstacktest

import (
	"net/http"
	"slices"
	"time"
)

type ksName struct {
	ID     string  `json:"id,omitempty"`
	Name   string  `json:"name,omitempty"`
	Domain *ksName `json:"domain,omitempty"`
}

type ksAuthRequest struct {
	Auth struct {
		Identity struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User struct {
					ID       string  `json:"id,omitempty"`
					Name     string  `json:"name,omitempty"`
					Domain   *ksName `json:"domain,omitempty"`
					Password string  `json:"password"`
				} `json:"user"`
			} `json:"password,omitempty"`
		} `json:"identity"`
		Scope *struct {
			Project *ksName `json:"project,omitempty"`
		} `json:"scope,omitempty"`
	} `json:"auth"`
}

// serveKeystone implements POST /v3/auth/tokens (password method, project
// scope) of the Identity v3 API reference.
func (c *Cloud) serveKeystone(w http.ResponseWriter, r *http.Request, p string) {
	if p != "/v3/auth/tokens" {
		c.violation(w, http.StatusNotFound, "keystone: %s %s: not an identity v3 path this fixture knows", r.Method, p)
		return
	}
	if r.Method != http.MethodPost {
		c.notAllowed(w, r)
		return
	}
	var req ksAuthRequest
	if err := decodeStrict(r, &req); err != nil {
		c.violation(w, http.StatusBadRequest, "keystone: auth request: %v", err)
		return
	}
	id := req.Auth.Identity
	if !slices.Equal(id.Methods, []string{"password"}) || id.Password == nil {
		c.violation(w, http.StatusBadRequest, "keystone: want identity.methods [password] with a password object, got %v", id.Methods)
		return
	}
	u := id.Password.User
	if u.Name != c.Username || u.Domain == nil || u.Domain.Name != c.Domain || u.Password != c.Password {
		refuse(w, http.StatusUnauthorized, "error", "The request you have made requires authentication.")
		return
	}
	sc := req.Auth.Scope
	if sc == nil || sc.Project == nil || sc.Project.Name != c.Project || sc.Project.Domain == nil || sc.Project.Domain.Name != c.Domain {
		c.violation(w, http.StatusBadRequest, "keystone: want a project scope %s in domain %s", c.Project, c.Domain)
		return
	}
	endpoint := func(t, name, url string) map[string]any {
		return map[string]any{
			"id": t + "-svc", "type": t, "name": name,
			"endpoints": []map[string]any{{
				"id": t + "-public", "interface": "public", "region": c.Region, "region_id": c.Region, "url": url,
			}},
		}
	}
	catalog := []map[string]any{
		endpoint("identity", "keystone", c.srv.URL+"/identity"),
		endpoint("compute", "nova", c.srv.URL+"/compute/v2.1"),
		endpoint("image", "glance", c.srv.URL+"/image"),
		endpoint("accelerator", "cyborg", c.srv.URL+"/accelerator"),
	}
	if c.PlacementURL != "" {
		catalog = append(catalog, endpoint("placement", "placement", c.PlacementURL))
	}
	now := time.Now().UTC()
	w.Header().Set("X-Subject-Token", c.Token)
	writeJSON(w, http.StatusCreated, map[string]any{"token": map[string]any{
		"methods":    []string{"password"},
		"issued_at":  now.Format("2006-01-02T15:04:05.000000Z"),
		"expires_at": now.Add(time.Hour).Format("2006-01-02T15:04:05.000000Z"),
		"audit_ids":  []string{"3T2dc1CGQxyJsHdDu1xkcw"},
		"user": map[string]any{
			"id": "ee4dfb6e5540447cb3741905149d9b6e", "name": c.Username, "password_expires_at": nil,
			"domain": map[string]any{"id": "default", "name": c.Domain},
		},
		"project": map[string]any{
			"id": "a6944d763bf64ee6a275f1263fae0352", "name": c.Project,
			"domain": map[string]any{"id": "default", "name": c.Domain},
		},
		"roles":     []map[string]any{{"id": "51cc68287d524c759f47c811e6463340", "name": "admin"}},
		"is_domain": false,
		"catalog":   catalog,
	}})
}
