package openstacktest

import (
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strings"
)

// Image is a Glance image in the fixture. Properties are the extra
// properties Glance shows as top-level fields.
type Image struct {
	ID              string
	Name            string
	Status          string
	DiskFormat      string
	ContainerFormat string
	Visibility      string
	Checksum        string
	HashValue       string
	Size            int64
	Properties      map[string]string
}

// AddImage seeds an active image holding data and returns its ID.
func (c *Cloud) AddImage(name string, data []byte, props map[string]string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	img := &Image{ID: newUUID(), Name: name, Status: "queued", DiskFormat: "raw", ContainerFormat: "bare", Visibility: "shared", Properties: props}
	c.images = append(c.images, img)
	c.store(img, data)
	return img.ID
}

// Images returns a copy of the images.
func (c *Cloud) Images() []Image {
	c.mu.Lock()
	defer c.mu.Unlock()
	return values(c.images)
}

// ImageData returns the bytes uploaded to an image.
func (c *Cloud) ImageData(id string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.imageData[id]
}

func (c *Cloud) store(img *Image, data []byte) {
	m := md5.Sum(data)
	s := sha512.Sum512(data)
	img.Checksum = hex.EncodeToString(m[:])
	img.HashValue = hex.EncodeToString(s[:])
	img.Size = int64(len(data))
	img.Status = "active"
	c.imageData[img.ID] = append([]byte(nil), data...)
}

func (c *Cloud) imageByID(id string) *Image {
	for _, im := range c.images {
		if im.ID == id {
			return im
		}
	}
	return nil
}

func imageJSON(im *Image) map[string]any {
	m := map[string]any{
		"id": im.ID, "name": im.Name, "status": im.Status,
		"disk_format": im.DiskFormat, "container_format": im.ContainerFormat,
		"visibility": im.Visibility, "protected": false, "os_hidden": false,
		"min_disk": 0, "min_ram": 0, "owner": "a6944d763bf64ee6a275f1263fae0352",
		"tags": []string{}, "created_at": stamp, "updated_at": stamp,
		"self": "/v2/images/" + im.ID, "file": "/v2/images/" + im.ID + "/file", "schema": "/v2/schemas/image",
		"virtual_size": nil, "checksum": nil, "os_hash_algo": nil, "os_hash_value": nil, "size": nil,
	}
	if im.Status == "active" {
		m["checksum"] = im.Checksum
		m["os_hash_algo"] = "sha512"
		m["os_hash_value"] = im.HashValue
		m["size"] = im.Size
	}
	for k, v := range im.Properties {
		m[k] = v
	}
	return m
}

// glanceReserved are the image fields a client may not set as properties.
var glanceReserved = map[string]bool{
	"id": false, "status": true, "checksum": true, "os_hash_algo": true, "os_hash_value": true,
	"size": true, "virtual_size": true, "created_at": true, "updated_at": true, "self": true,
	"file": true, "schema": true, "owner": false, "locations": true, "direct_url": true,
}

func (c *Cloud) serveGlance(w http.ResponseWriter, r *http.Request, p string) {
	if p == "/" {
		if r.Method != http.MethodGet {
			c.notAllowed(w, r)
			return
		}
		writeJSON(w, http.StatusMultipleChoices, map[string]any{"versions": []map[string]any{
			{"id": "v2.16", "status": "CURRENT", "links": []map[string]string{{"rel": "self", "href": c.srv.URL + "/image/v2/"}}},
			{"id": "v2.15", "status": "SUPPORTED", "links": []map[string]string{{"rel": "self", "href": c.srv.URL + "/image/v2/"}}},
		}})
		return
	}
	parts := strings.Split(strings.TrimPrefix(p, "/v2/"), "/")
	if !strings.HasPrefix(p, "/v2/") || parts[0] != "images" {
		c.violation(w, http.StatusNotFound, "glance: %s %s: not a path this fixture knows", r.Method, p)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet:
		if !c.checkQuery(w, r, "name", "limit", "marker", "status", "visibility") {
			return
		}
		q := r.URL.Query()
		list := []map[string]any{}
		for _, im := range c.images {
			if q.Has("name") && im.Name != q.Get("name") {
				continue
			}
			list = append(list, imageJSON(im))
		}
		first := "/v2/images"
		if len(q) > 0 {
			first += "?" + q.Encode()
		}
		writeJSON(w, http.StatusOK, map[string]any{"images": list, "first": first, "schema": "/v2/schemas/images"})
	case len(parts) == 1 && r.Method == http.MethodPost:
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			c.violation(w, http.StatusUnsupportedMediaType, "glance: create image: content type %q", ct)
			return
		}
		var req map[string]any
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			c.violation(w, http.StatusBadRequest, "glance: create image: %v", err)
			return
		}
		im := &Image{ID: newUUID(), Status: "queued", Visibility: "shared", Properties: map[string]string{}}
		for k, v := range req {
			s, isString := v.(string)
			switch k {
			case "name":
				im.Name = s
			case "disk_format":
				im.DiskFormat = s
			case "container_format":
				im.ContainerFormat = s
			case "visibility":
				im.Visibility = s
			case "tags", "protected", "min_disk", "min_ram", "os_hidden":
			default:
				if glanceReserved[k] {
					c.violation(w, http.StatusForbidden, "glance: create image: attribute %q is read-only", k)
					return
				}
				if !isString {
					c.violation(w, http.StatusBadRequest, "glance: create image: property %q must be a string", k)
					return
				}
				im.Properties[k] = s
			}
		}
		if im.DiskFormat == "" || im.ContainerFormat == "" {
			c.violation(w, http.StatusBadRequest, "glance: create image %q: disk_format and container_format are needed before upload", im.Name)
			return
		}
		c.images = append(c.images, im)
		w.Header().Set("Location", c.srv.URL+"/image/v2/images/"+im.ID)
		writeJSON(w, http.StatusCreated, imageJSON(im))
	case len(parts) == 2 && r.Method == http.MethodGet:
		im := c.imageByID(parts[1])
		if im == nil {
			refuse(w, http.StatusNotFound, "message", "No image found with ID "+parts[1])
			return
		}
		writeJSON(w, http.StatusOK, imageJSON(im))
	case len(parts) == 2 && r.Method == http.MethodPatch:
		c.patchImage(w, r, parts[1])
	case len(parts) == 3 && parts[2] == "file" && r.Method == http.MethodPut:
		im := c.imageByID(parts[1])
		if im == nil {
			refuse(w, http.StatusNotFound, "message", "No image found with ID "+parts[1])
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
			c.violation(w, http.StatusUnsupportedMediaType, "glance: upload %s: content type %q: want application/octet-stream", im.ID, ct)
			return
		}
		if im.Status != "queued" {
			refuse(w, http.StatusConflict, "message", "Image status transition from "+im.Status+" to saving is not allowed")
			return
		}
		data, err := io.ReadAll(r.Body)
		if err != nil {
			c.violation(w, http.StatusBadRequest, "glance: upload %s: %v", im.ID, err)
			return
		}
		c.store(im, data)
		w.WriteHeader(http.StatusNoContent)
	default:
		c.notAllowed(w, r)
	}
}

// patchImage applies a JSON patch to an image's properties (Images API v2
// "Update image"; glance/api/v2/images.py): the body must carry the
// JSON-patch media type; add sets a property whether or not it exists
// (with v2.0, only one that does not), replace and remove need it to
// exist; read-only fields are refused.
func (c *Cloud) patchImage(w http.ResponseWriter, r *http.Request, id string) {
	ct := r.Header.Get("Content-Type")
	if ct != "application/openstack-images-v2.1-json-patch" && ct != "application/openstack-images-v2.0-json-patch" {
		c.violation(w, http.StatusUnsupportedMediaType, "glance: update image %s: content type %q: want application/openstack-images-v2.1-json-patch", id, ct)
		return
	}
	var ops []struct {
		Op    string  `json:"op"`
		Path  string  `json:"path"`
		Value *string `json:"value"`
	}
	if err := json.NewDecoder(r.Body).Decode(&ops); err != nil || len(ops) == 0 {
		c.violation(w, http.StatusBadRequest, "glance: update image %s: want a JSON-patch list of string properties: %v", id, err)
		return
	}
	im := c.imageByID(id)
	if im == nil {
		refuse(w, http.StatusNotFound, "message", "No image found with ID "+id)
		return
	}
	props := maps.Clone(im.Properties)
	if props == nil {
		props = map[string]string{}
	}
	for _, op := range ops {
		name := strings.TrimPrefix(op.Path, "/")
		_, has := props[name]
		switch {
		case !strings.HasPrefix(op.Path, "/") || strings.Contains(name, "/"):
			c.violation(w, http.StatusBadRequest, "glance: update image %s: path %q", id, op.Path)
			return
		case glanceReserved[name] || name == "id" || name == "owner":
			c.violation(w, http.StatusForbidden, "glance: update image %s: attribute %q is read-only", id, name)
			return
		case op.Op == "add" && has && ct == "application/openstack-images-v2.0-json-patch":
			refuse(w, http.StatusConflict, "message", "Property "+name+" already present.")
			return
		case op.Op == "add" || op.Op == "replace" && has:
			if op.Value == nil {
				c.violation(w, http.StatusBadRequest, "glance: update image %s: %s %s without a value", id, op.Op, op.Path)
				return
			}
			props[name] = *op.Value
		case op.Op == "remove" && has:
			delete(props, name)
		case op.Op == "replace" || op.Op == "remove":
			refuse(w, http.StatusConflict, "message", "Property "+name+" does not exist.")
			return
		default:
			c.violation(w, http.StatusBadRequest, "glance: update image %s: op %q", id, op.Op)
			return
		}
	}
	im.Properties = props
	writeJSON(w, http.StatusOK, imageJSON(im))
}
