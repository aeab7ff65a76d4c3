// control.go: the server's test control (ours, not gomaasapi's): the call
// journal, injected faults, the emulator's own state and leftovers,
// settle, nodes added and the runtime config. See README.md.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

type call struct {
	N       int    `json:"n"`
	Method  string `json:"method"`
	Path    string `json:"path"`
	Op      string `json:"op"`
	Status  *int   `json:"status"` // null while pending
	Fault   bool   `json:"fault,omitempty"`
	Pending bool   `json:"pending"`
}

type fault struct {
	ID     int     `json:"id"`
	Op     string  `json:"op"`
	Status int     `json:"status,omitempty"`
	Body   string  `json:"body,omitempty"`
	Reset  bool    `json:"reset,omitempty"`
	Delay  float64 `json:"delay,omitempty"`
	Count  *int    `json:"count,omitempty"`
	Skip   int     `json:"skip,omitempty"`
	Hits   int     `json:"hits"`
}

type control struct {
	calls    []*call
	acquires []url.Values // the acquire forms (constraints, agent_name)
	faults   []*fault
	faultID  int
}

var (
	nodePathRE = regexp.MustCompile(`^nodes/[^/]+/`)
	filePathRE = regexp.MustCompile(`^files/.+/$`)
)

// template is an API path (after /api/1.0/) with its ids as {id}, {name}.
func template(p string) string {
	switch {
	case nodePathRE.MatchString(p) && p != "nodes/":
		return nodePathRE.ReplaceAllString(p, "nodes/{id}/")
	case filePathRE.MatchString(p):
		return "files/{name}/"
	}
	return p
}

// opName is a call as faults name it: "POST nodes/?op=acquire".
func opName(method, tmpl, op string) string {
	s := method + " " + tmpl
	if op != "" {
		s += "?op=" + op
	}
	return s
}

// match finds the fault for a call and counts it (mu held).
func (t *control) match(name string) *fault {
	for _, f := range t.faults {
		if f.Op != "*" && f.Op != name {
			continue
		}
		if f.Count != nil && *f.Count == 0 {
			continue
		}
		if f.Skip > 0 {
			f.Skip--
			continue
		}
		f.Hits++
		if f.Count != nil && *f.Count > 0 {
			*f.Count--
		}
		return f
	}
	return nil
}

// apply does what a fault says; true when the call must not go on.
func apply(f *fault, w http.ResponseWriter) bool {
	if f.Reset {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
				conn.Close()
			}
		}
		return true
	}
	if f.Status != 0 {
		body := f.Body
		if body == "" {
			body = http.StatusText(f.Status) + " (injected fault)"
		}
		if f.Status == 503 || f.Status == 429 {
			w.Header().Set("Retry-After", "1")
		}
		http.Error(w, body, f.Status)
		return true
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v interface{}) {
	b, _ := json.MarshalIndent(v, "", "  ")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// files is the names of the files gomaasapi holds (mu held).
func (c *cloud) files() []string {
	out := []string{}
	for name := range c.ts.Files() {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// serveTest answers /_test/... (mu held, except settle: see main.go).
func (s *maasServer) serveTest(w http.ResponseWriter, r *http.Request) {
	c, t := s.cloud, s.control
	q := r.URL.Query()
	switch p := strings.TrimPrefix(r.URL.Path, "/_test/"); {
	case p == "leftovers" && r.Method == "GET":
		writeJSON(w, 200, map[string]interface{}{"nodes": c.leftovers(), "files": c.files()})
	case p == "state" && r.Method == "GET":
		nodes := []*node{}
		for _, id := range c.order {
			nodes = append(nodes, c.nodes[id])
		}
		owned := []string{}
		for id := range c.ts.OwnedNodes() {
			owned = append(owned, id)
		}
		sort.Strings(owned)
		writeJSON(w, 200, map[string]interface{}{"nodes": nodes, "owned": owned, "files": c.files(),
			"running": c.hosts.Running(), "acquires": t.acquires})
	case p == "calls" && r.Method == "GET":
		writeJSON(w, 200, map[string]interface{}{"calls": t.calls})
	case p == "calls" && r.Method == "DELETE":
		t.calls = []*call{}
		w.WriteHeader(204)
	case p == "faults" && r.Method == "POST":
		var list []*fault
		var one fault
		dec := json.NewDecoder(r.Body)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			http.Error(w, "faults: "+err.Error(), 400)
			return
		}
		if len(raw) > 0 && raw[0] == '[' {
			if err := json.Unmarshal(raw, &list); err != nil {
				http.Error(w, "faults: "+err.Error(), 400)
				return
			}
		} else if err := json.Unmarshal(raw, &one); err != nil {
			http.Error(w, "faults: "+err.Error(), 400)
			return
		} else {
			list = []*fault{&one}
		}
		ids := []int{}
		for _, f := range list {
			if f.Op == "" {
				f.Op = "*"
			}
			if f.Count == nil {
				n := 1
				f.Count = &n
			}
			t.faultID++
			f.ID = t.faultID
			t.faults = append(t.faults, f)
			ids = append(ids, f.ID)
		}
		writeJSON(w, 200, map[string]interface{}{"ids": ids})
	case p == "faults" && r.Method == "GET":
		writeJSON(w, 200, map[string]interface{}{"faults": t.faults})
	case p == "faults" && r.Method == "DELETE":
		t.faults = []*fault{}
		w.WriteHeader(204)
	case p == "nodes" && r.Method == "POST":
		n, cpus, mem := 1, 2, 4096
		arch, zone := "amd64/generic", "default"
		for k, dst := range map[string]*int{"count": &n, "cpus": &cpus, "mem": &mem} {
			if v := q.Get(k); v != "" {
				x, err := strconv.Atoi(v)
				if err != nil || x < 0 {
					http.Error(w, "nodes: bad "+k+" "+strconv.Quote(v), 400)
					return
				}
				*dst = x
			}
		}
		if v := q.Get("arch"); v != "" {
			arch = v
		}
		if v := q.Get("zone"); v != "" {
			zone = v
		}
		var tags []string
		if v := q.Get("tags"); v != "" {
			tags = strings.Split(v, ",")
		}
		writeJSON(w, 200, map[string]interface{}{"ids": c.addNodes(n, arch, cpus, mem, zone, tags)})
	case p == "config" && r.Method == "POST":
		for k, dst := range map[string]*int{"deploy_polls": &c.deployPolls, "fail_deploy": &c.failDeploy} {
			if v := q.Get(k); v != "" {
				x, err := strconv.Atoi(v)
				if err != nil || x < 0 {
					http.Error(w, "config: bad "+k+" "+strconv.Quote(v), 400)
					return
				}
				*dst = x
			}
		}
		switch q.Get("launcher") {
		case "":
		case "0":
			c.noLaunch = true
		case "1":
			c.noLaunch = false
		default:
			http.Error(w, "config: bad launcher "+strconv.Quote(q.Get("launcher")), 400)
			return
		}
		writeJSON(w, 200, map[string]interface{}{"deploy_polls": c.deployPolls, "fail_deploy": c.failDeploy,
			"launcher": !c.noLaunch})
	case strings.HasPrefix(p, "user-data/") && r.Method == "GET":
		n := c.nodes[strings.TrimPrefix(p, "user-data/")]
		if n == nil || n.UserDataFile == "" {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, n.UserDataFile)
	default:
		http.Error(w, fmt.Sprintf("no test call %s %s", r.Method, r.URL.Path), 404)
	}
}
