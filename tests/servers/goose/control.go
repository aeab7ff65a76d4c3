// control.go: the fake's test control of the compute side (ours, not
// goose's): injected faults, the call journal, the emulator's own state and
// leftovers, settle, and the runtime config of servers, images and pools.
// See README.md.
package main

import (
	"encoding/json"
	"fmt"
	"io/ioutil"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"time"

	"../httpstatus"
)

// injected is one fault of /_test/faults: which calls it hits, then what it
// does to them, to the connection or as Nova's error answer (the JSON is
// flat: the embedded structs' fields are promoted).
type injected struct {
	ID   int `json:"id"`
	Hits int `json:"hits"`
	faultMatch
	faultTransport
	faultAnswer
}

// faultMatch: the calls of Op ("*": any) a fault hits, after letting Skip
// of them pass, Count times (0: every one; default 1).
type faultMatch struct {
	Op    string `json:"op"`
	Count *int   `json:"count,omitempty"`
	Skip  int    `json:"skip,omitempty"`
}

// faultTransport: a late answer (Delay, in seconds), a reset instead of the
// answer (Reset), or a reset after the call was done (DropResponse).
type faultTransport struct {
	Delay        float64 `json:"delay,omitempty"`
	Reset        bool    `json:"reset,omitempty"`
	DropResponse bool    `json:"drop_response,omitempty"`
}

// faultAnswer: the error answered instead of the call: Status with Body (a
// JSON document, or a JSON string of any text; Nova's error document for
// Status when empty) and Retry-After (default 1 s for 413 and 429).
type faultAnswer struct {
	Status     int             `json:"status,omitempty"`
	Body       json.RawMessage `json:"body,omitempty"`
	RetryAfter *float64        `json:"retry_after,omitempty"`
}

// write answers the error.
func (a *faultAnswer) write(w http.ResponseWriter) {
	body := []byte(a.Body)
	if len(body) > 0 && body[0] == '"' {
		var s string
		json.Unmarshal(body, &s)
		body = []byte(s)
	}
	if len(body) == 0 {
		k, msg := defaultFault(a.Status)
		body, _ = json.Marshal(map[string]interface{}{k: map[string]interface{}{"message": msg, "code": a.Status}})
	}
	if a.Status == 413 || a.Status == 429 || a.RetryAfter != nil {
		ra := 1.0
		if a.RetryAfter != nil {
			ra = *a.RetryAfter
		}
		w.Header().Set("Retry-After", strconv.FormatFloat(ra, 'f', -1, 64))
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(a.Status)
	w.Write(body)
}

// call is one journal entry, journaled when the call arrives: pending and
// status null until it is answered (or reset), so a held call shows.
// Swift calls also name their container and object (names, never contents).
type call struct {
	N         int     `json:"n"`
	Time      float64 `json:"time"`
	Method    string  `json:"method"`
	Path      string  `json:"path"`
	Service   string  `json:"service"`
	Container string  `json:"container,omitempty"`
	Object    string  `json:"object,omitempty"`
	Status    *int    `json:"status"`
	Pending   bool    `json:"pending"`
	Fault     string  `json:"fault,omitempty"`
}

// collections whose next path segment is an id (except the fixed ones).
var collections = map[string]bool{"servers": true, "flavors": true, "images": true, "os-security-groups": true,
	"os-security-group-rules": true, "os-floating-ips": true, "os-networks": true, "os-availability-zone": true,
	"os-volume_attachments": true, "metadata": true}
var fixedSegments = map[string]bool{"detail": true, "action": true}

// template is a compute path (after /v2/<tenant>) with its ids as {id}.
func template(p string) string {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	for i := 1; i < len(parts); i++ {
		if collections[parts[i-1]] && !fixedSegments[parts[i]] && !collections[parts[i]] {
			parts[i] = "{id}"
		}
	}
	return "/" + strings.Join(parts, "/")
}

// swiftTemplate is a Swift path with its names as {container}, {object}.
func swiftTemplate(container, object string) string {
	switch {
	case container == "":
		return "/swift"
	case object == "":
		return "/swift/{container}"
	}
	return "/swift/{container}/{object}"
}

// resetConn closes the client's connection with a RST, answering nothing.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// defaultFault is Nova's error document for a status.
func defaultFault(status int) (string, string) {
	switch status {
	case 400:
		return "badRequest", "Bad request (injected fault)"
	case 401:
		return "unauthorized", "The request you have made requires authentication."
	case 403:
		return "forbidden", "Policy doesn't allow this to be performed (injected fault)."
	case 404:
		return "itemNotFound", "The resource could not be found (injected fault)."
	case 409:
		return "conflictingRequest", "There was a conflict when trying to complete your request (injected fault)."
	case 413, 429:
		return "overLimit", "This request was rate-limited (injected fault)."
	case 503:
		return "serviceUnavailable", "The service is unavailable (injected fault)."
	}
	return "computeFault", "The server has either erred or is incapable of performing the requested operation (injected fault)."
}

// faultFor takes the first pending fault matching op (f.mu held).
func (f *fake) faultFor(op string) *injected {
	for i, ft := range f.faults {
		if ft.Op != "*" && ft.Op != op {
			continue
		}
		if ft.Skip > 0 {
			ft.Skip--
			continue
		}
		ft.Hits++
		if ft.Count != nil && *ft.Count > 0 {
			*ft.Count--
			if *ft.Count == 0 {
				f.faults = append(f.faults[:i:i], f.faults[i+1:]...)
			}
		}
		return ft
	}
	return nil
}

// faultKind is what an injected fault does, as the journal names it.
func faultKind(ft *injected) string {
	switch {
	case ft == nil:
		return ""
	case ft.Reset:
		return "reset"
	case ft.DropResponse:
		return "drop_response"
	case ft.Status != 0:
		return "status"
	}
	return "delay"
}

// journaled runs a service call (after its token was checked) through the
// injected faults and into the journal. The call is journaled at once
// (pending, status null) and updated when answered.
func (f *fake) journaled(w http.ResponseWriter, r *http.Request, service, op string, h func(http.ResponseWriter)) {
	f.journaledNamed(w, r, service, op, "", "", h)
}

func (f *fake) journaledNamed(w http.ResponseWriter, r *http.Request, service, op, container, object string,
	h func(http.ResponseWriter)) {
	f.mu.Lock()
	ft := f.faultFor(op)
	f.ncalls++
	c := &call{N: f.ncalls, Time: float64(time.Now().UnixNano()) / 1e9, Method: r.Method,
		Path: op[strings.Index(op, " ")+1:], Service: service, Container: container, Object: object,
		Pending: true, Fault: faultKind(ft)}
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	sw := &httpstatus.Writer{ResponseWriter: w}
	switch {
	case ft == nil:
		h(sw)
	default:
		if ft.Delay > 0 {
			time.Sleep(time.Duration(ft.Delay * float64(time.Second)))
		}
		switch {
		case ft.Reset:
			resetConn(w)
		case ft.DropResponse:
			h(httptest.NewRecorder())
			resetConn(w)
		case ft.Status != 0:
			ft.write(sw)
		default:
			h(sw)
		}
	}
	f.mu.Lock()
	c.Pending = false
	if sw.Status != 0 {
		status := sw.Status
		c.Status = &status
	}
	f.mu.Unlock()
}

func readJSON(r *http.Request, v interface{}) error {
	body, _ := ioutil.ReadAll(r.Body)
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	return json.Unmarshal(body, v)
}

// serveCompute handles the /_test/ endpoints of the compute side; false for
// the others.
func (f *fake) serveComputeTest(w http.ResponseWriter, r *http.Request) bool {
	c := f.compute
	switch r.URL.Path {
	case "/_test/faults":
		switch r.Method {
		case "POST":
			body, _ := ioutil.ReadAll(r.Body)
			var list []*injected
			if err := json.Unmarshal(body, &list); err != nil {
				var one injected
				if err := json.Unmarshal(body, &one); err != nil {
					writeJSON(w, 400, map[string]string{"error": "a fault object or a list: " + err.Error()})
					return true
				}
				list = []*injected{&one}
			}
			f.mu.Lock()
			ids := []int{}
			for _, ft := range list {
				if ft.Op == "" {
					ft.Op = "*"
				}
				if ft.Count == nil {
					one := 1
					ft.Count = &one
				}
				if ft.Status == 0 && !ft.Reset && !ft.DropResponse && ft.Delay == 0 {
					f.mu.Unlock()
					writeJSON(w, 400, map[string]string{"error": "a fault needs status, reset, drop_response or delay"})
					return true
				}
				f.nfaults++
				ft.ID = f.nfaults
				ids = append(ids, ft.ID)
				f.faults = append(f.faults, ft)
			}
			f.mu.Unlock()
			writeJSON(w, 200, map[string]interface{}{"ids": ids})
		case "DELETE":
			f.mu.Lock()
			f.faults = nil
			f.mu.Unlock()
			writeJSON(w, 200, map[string]bool{"ok": true})
		default:
			f.mu.Lock()
			list := append([]*injected{}, f.faults...)
			f.mu.Unlock()
			writeJSON(w, 200, map[string]interface{}{"faults": list})
		}
	case "/_test/calls":
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.Method == "DELETE" {
			f.calls = nil
			writeJSON(w, 200, map[string]bool{"ok": true})
			return true
		}
		list := []*call{}
		for _, cl := range f.calls {
			if s := r.URL.Query().Get("service"); s == "" || s == cl.Service {
				list = append(list, cl)
			}
		}
		writeJSON(w, 200, map[string]interface{}{"calls": list})
	case "/_test/settle":
		timeout := 60.0
		if v := r.URL.Query().Get("timeout"); v != "" {
			timeout, _ = strconv.ParseFloat(v, 64)
		}
		if !c.settle(time.Duration(timeout * float64(time.Second))) {
			writeJSON(w, 504, map[string]interface{}{"settled": false, "running": c.runningCount()})
			return true
		}
		writeJSON(w, 200, map[string]bool{"settled": true})
	case "/_test/state":
		writeJSON(w, 200, f.state())
	case "/_test/leftovers":
		writeJSON(w, 200, f.leftovers())
	default:
		if strings.HasPrefix(r.URL.Path, "/_test/object/") {
			f.serveTestObject(w, r, strings.TrimPrefix(r.URL.Path, "/_test/object/"))
			return true
		}
		if strings.HasPrefix(r.URL.Path, "/_test/user-data/") {
			c.mu.Lock()
			srv := c.servers[strings.TrimPrefix(r.URL.Path, "/_test/user-data/")]
			c.mu.Unlock()
			if srv == nil {
				http.NotFound(w, r)
				return true
			}
			data, _ := ioutil.ReadFile(srv.UserDataFile)
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(data)
			return true
		}
		return false
	}
	return true
}

// serveTestObject answers GET /_test/object/REGION/CONTAINER/OBJECT with
// the object's content as Swift holds it (the secrets audit reads every
// stored object; the store lives in the fake's memory).
func (f *fake) serveTestObject(w http.ResponseWriter, r *http.Request, rest string) {
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 || parts[2] == "" {
		writeJSON(w, 400, map[string]string{"error": "want /_test/object/REGION/CONTAINER/OBJECT"})
		return
	}
	for version, region := range f.regions {
		if region != parts[0] {
			continue
		}
		data, err := f.swifts[version].GetObject(parts[1], parts[2])
		if err != nil {
			writeJSON(w, 404, map[string]string{"error": err.Error()})
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(200)
		w.Write(data)
		return
	}
	writeJSON(w, 404, map[string]string{"error": "no region " + parts[0]})
}

func (c *compute) runningCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hosts.Running()
}

// configCompute applies the compute keys of /_test/config (query
// parameters); an error names the bad one.
func (c *compute) config(q map[string][]string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	get := func(k string) (string, bool) {
		v, ok := q[k]
		if !ok || len(v) == 0 {
			return "", false
		}
		return v[0], true
	}
	if v, ok := get("build_gets"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("build_gets: %q is not a count", v)
		}
		c.buildGets = n
	}
	if v, ok := get("delete_gets"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("delete_gets: %q is not a count", v)
		}
		c.deleteGets = n
	}
	if v, ok := get("launcher"); ok {
		c.useLaunch = v == "1" && c.launcher != ""
	}
	if v, ok := get("group_in_use"); ok {
		c.groupInUse = v == "1"
	}
	if v, ok := get("images"); ok {
		c.images = map[string]string{}
		for _, id := range strings.Split(v, ",") {
			if id != "" {
				c.images[id] = "image-" + id
			}
		}
	}
	if v, ok := get("add_images"); ok {
		for _, id := range strings.Split(v, ",") {
			if id != "" {
				c.images[id] = "image-" + id
			}
		}
	}
	if v, ok := get("address_pool"); ok {
		pool, err := parsePool(v)
		if err != nil {
			return fmt.Errorf("address_pool: %v", err)
		}
		c.pool, c.poolNext = pool, 0
	}
	if v, ok := get("floating_pool"); ok {
		pool, err := parsePool(v)
		if err != nil {
			return fmt.Errorf("floating_pool: %v", err)
		}
		c.fips.pool = pool
	}
	return nil
}

// state is the emulator's own view, for assertions.
func (f *fake) state() map[string]interface{} {
	c := f.compute
	c.mu.Lock()
	servers := []map[string]interface{}{}
	for _, id := range c.order {
		srv := c.servers[id]
		status, _, task := c.status(srv)
		if srv.Gone {
			status, task = "DELETED", nil
		}
		var rec map[string]interface{}
		b, _ := json.Marshal(srv)
		json.Unmarshal(b, &rec)
		rec["status"] = status
		rec["task_state"] = task
		rec["floating_ips"] = c.fips.of(id)
		servers = append(servers, rec)
	}
	fips := []interface{}{}
	for _, ip := range c.fips.sorted() {
		m := c.fips.json(ip)
		m["nat"] = len(ip.listeners) > 0
		fips = append(fips, m)
	}
	rec := c.call("GET", "/v2/"+c.tenant+"/os-security-groups", nil, http.Header{"X-Auth-Token": {c.token}})
	var groups struct {
		Groups []interface{} `json:"security_groups"`
	}
	var doc interface{}
	json.Unmarshal(rec.Body.Bytes(), &doc)
	b, _ := json.Marshal(normalize(doc, ""))
	json.Unmarshal(b, &groups)
	images := []string{}
	for id := range c.images {
		images = append(images, id)
	}
	sort.Strings(images)
	c.mu.Unlock()
	return map[string]interface{}{"servers": servers, "security_groups": groups.Groups, "floating_ips": fips,
		"images": images, "swift": f.swiftState()}
}

// swiftState lists every region's containers and objects.
func (f *fake) swiftState() map[string]interface{} {
	out := map[string]interface{}{}
	for version, s := range f.swifts {
		containers := map[string]interface{}{}
		for _, name := range f.containerNames(version) {
			objs := []string{}
			if items, err := s.ListContainer(name, map[string]string{}); err == nil {
				for _, it := range items {
					objs = append(objs, it.Name)
				}
			}
			sort.Strings(objs)
			f.mu.Lock()
			acl := f.acls[version+"/"+name]
			f.mu.Unlock()
			containers[name] = map[string]interface{}{"objects": objs, "read_acl": acl}
		}
		out[f.regions[version]] = containers
	}
	return out
}

// leftovers is what a clean destroy-environment leaves: nothing. The
// fixture's own containers (imagemetadata) and the default group do not count.
func (f *fake) leftovers() map[string]interface{} {
	c := f.compute
	c.mu.Lock()
	servers := []string{}
	for _, id := range c.order {
		if !c.servers[id].Gone {
			servers = append(servers, id)
		}
	}
	fips := []string{}
	for _, ip := range c.fips.sorted() {
		fips = append(fips, ip.IP)
	}
	rec := c.call("GET", "/v2/"+c.tenant+"/os-security-groups", nil, http.Header{"X-Auth-Token": {c.token}})
	c.mu.Unlock()
	var doc struct {
		Groups []struct {
			Name string
		} `json:"security_groups"`
	}
	json.Unmarshal(rec.Body.Bytes(), &doc)
	groups := []string{}
	for _, g := range doc.Groups {
		if g.Name != "default" {
			groups = append(groups, g.Name)
		}
	}
	sort.Strings(groups)
	containers := []string{}
	objects := 0
	for version, s := range f.swifts {
		for _, name := range f.containerNames(version) {
			items, _ := s.ListContainer(name, map[string]string{})
			if name == "imagemetadata" && version == "v1" {
				continue
			}
			containers = append(containers, f.regions[version]+"/"+name)
			objects += len(items)
		}
	}
	sort.Strings(containers)
	return map[string]interface{}{"servers": servers, "security_groups": groups, "floating_ips": fips,
		"containers": containers, "objects": objects}
}
