// compute.go: the Nova v2 API of the fake, wrapping goose's novaservice
// (unchanged, reached through its HTTP handler) with what a real cloud does
// and goose does not: servers that are real test hosts (the -launcher /
// -terminator programs), BUILD -> ACTIVE with the host's address, deletion
// that lasts until the host is gone, the image and flavor checks of POST
// /servers, user_data decoded and stored, Glance-less GET /images/{id},
// security groups refused while a server uses them, and the real API's
// lower-case JSON keys (goose writes "Status", "Addresses", ...).
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/ioutil"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"../hosts"
)

// maxUserData is Nova's limit on the base64 text of user_data.
const maxUserData = 65535

// server is our record of one server goose's Nova holds.
type server struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Index        int               `json:"index"`
	Image        string            `json:"image"`
	Flavor       string            `json:"flavor"`
	Zone         string            `json:"availability_zone"`
	Groups       []string          `json:"security_groups"`
	Networks     []string          `json:"networks"`
	Metadata     map[string]string `json:"metadata"`
	Address      string            `json:"address"`
	UserDataFile string            `json:"user_data_file"`
	UserDataSize int               `json:"user_data_size"`
	UserDataGzip bool              `json:"user_data_gzip"`
	Gets         int               `json:"gets"`
	Created      time.Time         `json:"created"`
	Fault        *novaFault        `json:"fault"`
	// launcher: "none" (no -launcher), "running", "answered", "failed".
	Launcher       string `json:"launcher"`
	LauncherOutput string `json:"launcher_output"`
	// terminator: "" (not deleted), "none" (no -terminator), "running",
	// "exited", "failed".
	Terminator       string `json:"terminator"`
	TerminatorOutput string `json:"terminator_output"`
	Deleting         bool   `json:"deleting"`
	DeleteGets       int    `json:"delete_gets"`
	Gone             bool   `json:"gone"`
}

type novaFault struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
	Created string `json:"created"`
}

// compute is the Nova side of the fake. mu guards everything here and
// serialises goose's Nova, which has no locking of its own.
type compute struct {
	mu         sync.Mutex
	hosts      *hosts.Tracker
	nova       http.Handler
	tenant     string
	dir        string
	launcher   string
	terminator string
	useLaunch  bool
	buildGets  int
	deleteGets int
	pool       []string // fixed addresses when there is no launcher
	poolNext   int
	images     map[string]string // id -> name
	groupInUse bool
	servers    map[string]*server
	order      []string
	index      int
	fips       *floatingIPs
	stopping   bool
	token      string // the fake's own token for its calls to goose's Nova
}

func newCompute(nova http.Handler, tenant, dir, launcher, terminator string) *compute {
	c := &compute{nova: nova, tenant: tenant, dir: dir, launcher: launcher, terminator: terminator,
		useLaunch: launcher != "", buildGets: 1, images: map[string]string{}, groupInUse: true,
		servers: map[string]*server{}}
	c.hosts = hosts.NewTracker(&c.mu, "server")
	return c
}

// parsePool reads "A.B.C.X-Y" or a comma-separated list of addresses.
func parsePool(spec string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if i := strings.LastIndex(part, "-"); i > 0 {
			dot := strings.LastIndex(part[:i], ".")
			lo, err1 := strconv.Atoi(part[dot+1 : i])
			hi, err2 := strconv.Atoi(part[i+1:])
			if dot < 0 || err1 != nil || err2 != nil || lo > hi || hi > 255 {
				return nil, fmt.Errorf("bad address range %q (want A.B.C.X-Y)", part)
			}
			for n := lo; n <= hi; n++ {
				out = append(out, fmt.Sprintf("%s.%d", part[:dot], n))
			}
			continue
		}
		if ip := net.ParseIP(part); ip == nil || ip.To4() == nil {
			return nil, fmt.Errorf("bad address %q", part)
		}
		out = append(out, part)
	}
	return out, nil
}

func novaError(w http.ResponseWriter, status int, kind, msg string) {
	writeJSON(w, status, map[string]interface{}{kind: map[string]interface{}{"message": msg, "code": status}})
}

// call runs goose's Nova on a request (mu held).
func (c *compute) call(method, path string, body []byte, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	for k, v := range header {
		r.Header[k] = v
	}
	rec := httptest.NewRecorder()
	c.nova.ServeHTTP(rec, r)
	return rec
}

// serve answers one compute request; p is the path after /v2/<tenant>.
func (c *compute) serve(w http.ResponseWriter, r *http.Request, full string, p string) {
	body, _ := ioutil.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	parts := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case parts[0] == "images":
		c.serveImages(w, r, parts)
		return
	case parts[0] == "os-floating-ips":
		c.fips.serve(c, w, r, parts, body)
		return
	case parts[0] == "servers" && len(parts) == 1 && r.Method == "POST":
		c.createServer(w, r, full, body)
		return
	case parts[0] == "servers" && len(parts) == 2 && r.Method == "DELETE" && parts[1] != "detail":
		c.deleteServer(w, r, full, parts[1])
		return
	case parts[0] == "servers" && len(parts) == 3 && parts[2] == "action" && r.Method == "POST":
		if c.serverAction(w, r, parts[1], body) {
			return
		}
	case parts[0] == "os-security-groups" && len(parts) == 2 && r.Method == "DELETE":
		if c.groupUsed(w, r, full, parts[1]) {
			return
		}
	}
	rec := c.call(r.Method, full, body, r.Header)
	if rec.Code >= 200 && rec.Code < 300 && r.Method == "GET" && parts[0] == "servers" {
		c.rewriteServers(rec, parts)
	}
	c.respond(w, rec)
}

// respond copies goose's answer, with its JSON keys as the real API spells them.
func (c *compute) respond(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	out := rec.Body.Bytes()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	if len(out) > 0 && (out[0] == '{' || out[0] == '[') {
		var doc interface{}
		if err := json.Unmarshal(out, &doc); err == nil {
			out, _ = json.Marshal(normalize(doc, ""))
			w.Header().Set("Content-Type", "application/json")
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(rec.Code)
	w.Write(out)
}

// realKeys maps goose's Go-style JSON keys to the Nova v2 API's; "" drops
// the key (goose-only fields).
var realKeys = map[string]string{
	"Addresses": "addresses", "Created": "created", "Flavor": "flavor", "HostId": "hostId",
	"Image": "image", "Links": "links", "Name": "name", "Metadata": "metadata", "Progress": "progress",
	"Status": "status", "Updated": "updated", "AddressIPv4": "accessIPv4", "AddressIPv6": "accessIPv6",
	"UUID": "", "Href": "href", "Rel": "rel", "Type": "type", "Rules": "rules",
	"Description": "description", "Group": "group", "RAM": "ram", "VCPUs": "vcpus", "Disk": "disk",
	"Available": "available", "Label": "label", "Cidr": "cidr",
}

// normalize rewrites goose's keys (never inside metadata: those keys are the
// user's), drops empty link types and entity uuids, and makes ids strings.
func normalize(v interface{}, parent string) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		if parent == "metadata" {
			return t
		}
		out := map[string]interface{}{}
		for k, val := range t {
			nk := k
			if m, ok := realKeys[k]; ok {
				nk = m
			}
			if nk == "" || k == "uuid" {
				continue
			}
			if nk == "type" && val == "" {
				continue
			}
			if nk == "name" && val == "" && (parent == "flavor" || parent == "image") {
				continue
			}
			out[nk] = normalize(val, nk)
		}
		return out
	case []interface{}:
		for i := range t {
			t[i] = normalize(t[i], parent)
		}
		return t
	}
	return v
}

// ---------------------------------------------------------------------------
// images (Nova's image proxy, without Glance)

func (c *compute) serveImages(w http.ResponseWriter, r *http.Request, parts []string) {
	if r.Method != "GET" {
		novaError(w, 405, "badMethod", "The method specified is not allowed for this resource.")
		return
	}
	image := func(id string) map[string]interface{} {
		return map[string]interface{}{"id": id, "name": c.images[id], "status": "ACTIVE", "progress": 100,
			"minDisk": 0, "minRam": 0, "metadata": map[string]string{}, "created": "2015-01-01T00:00:00Z",
			"updated": "2015-01-01T00:00:00Z", "links": []interface{}{}}
	}
	if len(parts) == 1 || (len(parts) == 2 && parts[1] == "detail") {
		ids := make([]string, 0, len(c.images))
		for id := range c.images {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		list := []interface{}{}
		for _, id := range ids {
			list = append(list, image(id))
		}
		writeJSON(w, 200, map[string]interface{}{"images": list})
		return
	}
	if _, ok := c.images[parts[1]]; !ok || len(parts) != 2 {
		novaError(w, 404, "itemNotFound", "Image not found.")
		return
	}
	writeJSON(w, 200, map[string]interface{}{"image": image(parts[1])})
}

// ref is the id of an imageRef/flavorRef given as an id or a link.
func ref(s string) string {
	if i := strings.LastIndex(s, "/"); i >= 0 {
		return s[i+1:]
	}
	return s
}

func (c *compute) flavorExists(full, id string) bool {
	prefix := strings.TrimSuffix(full, "/servers")
	rec := c.call("GET", prefix+"/flavors/detail", nil, http.Header{"X-Auth-Token": {c.token}})
	var doc struct {
		Flavors []map[string]interface{} `json:"flavors"`
	}
	json.Unmarshal(rec.Body.Bytes(), &doc)
	for _, f := range doc.Flavors {
		if fmt.Sprint(f["id"]) == id {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// servers

func (c *compute) createServer(w http.ResponseWriter, r *http.Request, full string, body []byte) {
	var req struct {
		Server struct {
			Name           string            `json:"name"`
			ImageRef       string            `json:"imageRef"`
			FlavorRef      string            `json:"flavorRef"`
			UserData       *string           `json:"user_data"`
			Metadata       map[string]string `json:"metadata"`
			SecurityGroups []struct {
				Name string `json:"name"`
			} `json:"security_groups"`
			Networks []struct {
				UUID string `json:"uuid"`
			} `json:"networks"`
			Zone string `json:"availability_zone"`
		} `json:"server"`
	}
	// goose's own checks first (malformed body, missing name/imageRef/flavorRef).
	if err := json.Unmarshal(body, &req); err != nil || req.Server.Name == "" || req.Server.ImageRef == "" ||
		req.Server.FlavorRef == "" {
		c.respond(w, c.call("POST", full, body, r.Header))
		return
	}
	s := req.Server
	if _, ok := c.images[ref(s.ImageRef)]; !ok {
		novaError(w, 400, "badRequest", "Can not find requested image")
		return
	}
	if !c.flavorExists(full, ref(s.FlavorRef)) {
		novaError(w, 400, "badRequest", fmt.Sprintf("Flavor %s could not be found.", ref(s.FlavorRef)))
		return
	}
	var userData []byte
	if s.UserData != nil {
		if len(*s.UserData) > maxUserData {
			novaError(w, 400, "badRequest", fmt.Sprintf(
				"User data too large. User data must be no larger than %d bytes once base64 encoded. Your data is %d bytes",
				maxUserData, len(*s.UserData)))
			return
		}
		d, err := base64.StdEncoding.DecodeString(*s.UserData)
		if err != nil {
			novaError(w, 400, "badRequest", "Userdata content cannot be decoded")
			return
		}
		userData = d
	}
	rec := c.call("POST", full, body, r.Header)
	if rec.Code != 202 {
		c.respond(w, rec)
		return
	}
	var resp struct {
		Server struct {
			ID string `json:"id"`
		} `json:"server"`
	}
	json.Unmarshal(rec.Body.Bytes(), &resp)
	c.index++
	srv := &server{ID: resp.Server.ID, Name: s.Name, Index: c.index, Image: ref(s.ImageRef),
		Flavor: ref(s.FlavorRef), Zone: s.Zone, Metadata: s.Metadata, Created: time.Now().UTC(),
		UserDataSize: len(userData), UserDataGzip: bytes.HasPrefix(userData, []byte{0x1f, 0x8b})}
	if srv.Metadata == nil {
		srv.Metadata = map[string]string{}
	}
	for _, g := range s.SecurityGroups {
		srv.Groups = append(srv.Groups, g.Name)
	}
	if len(srv.Groups) == 0 {
		srv.Groups = []string{"default"}
	}
	for _, n := range s.Networks {
		srv.Networks = append(srv.Networks, n.UUID)
	}
	// The user-data as sent (the launcher's USER_DATA_FILE: juju.testing.instance
	// takes it gzip'd or not), 0600.
	srv.UserDataFile = filepath.Join(c.dir, "user-data-"+srv.ID)
	if err := ioutil.WriteFile(srv.UserDataFile, userData, 0600); err != nil {
		log.Printf("cannot write %s: %v", srv.UserDataFile, err)
	}
	c.servers[srv.ID] = srv
	c.order = append(c.order, srv.ID)
	if c.useLaunch && c.launcher != "" {
		srv.Launcher = "running"
		c.hosts.Start()
		go c.launch(srv)
	} else {
		srv.Launcher = "none"
		if c.poolNext < len(c.pool) {
			srv.Address = c.pool[c.poolNext]
			c.poolNext++
		} else {
			srv.Fault = &novaFault{Message: "No valid host was found. There are not enough hosts available.",
				Code: 500, Created: time.Now().UTC().Format(time.RFC3339)}
		}
	}
	c.respond(w, rec)
}

// launch runs the launcher for srv: its first stdout line is the address.
func (c *compute) launch(srv *server) {
	c.mu.Lock()
	line, h := c.launcher, hosts.Host{ID: srv.ID, Name: srv.Name, Index: srv.Index, UserDataFile: srv.UserDataFile}
	c.mu.Unlock()
	output, err := c.hosts.Launch(line, h, func(address string) {
		srv.Address = address
		srv.Launcher = "answered"
	})
	defer c.mu.Unlock()
	if srv.Launcher == "running" {
		c.hosts.Done()
		srv.Launcher = "failed"
		srv.LauncherOutput = output
		why := "exited without printing an address"
		if err != nil {
			why = err.Error()
		}
		srv.Fault = &novaFault{Message: "launcher failed: " + why + ": " + lastLine(output), Code: 500,
			Created: time.Now().UTC().Format(time.RFC3339)}
		log.Printf("server %s: launcher failed: %s: %s", srv.ID, why, output)
		return
	}
	srv.LauncherOutput = output
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// status is what GET shows of srv now: (status, vm_state, task_state).
func (c *compute) status(srv *server) (string, string, interface{}) {
	switch {
	case srv.Deleting:
		if srv.Fault != nil {
			return "ERROR", "error", "deleting"
		}
		return "ACTIVE", "active", "deleting"
	case srv.Fault != nil:
		return "ERROR", "error", nil
	case srv.Address == "" || srv.Gets < c.buildGets:
		return "BUILD", "building", "spawning"
	}
	return "ACTIVE", "active", nil
}

// addresses is srv's addresses value (empty while it builds).
func (c *compute) addresses(srv *server, status string) map[string]interface{} {
	out := map[string]interface{}{}
	if srv.Address == "" || status == "BUILD" {
		return out
	}
	mac := fmt.Sprintf("fa:16:3e:00:%02x:%02x", (srv.Index>>8)&0xff, srv.Index&0xff)
	list := []interface{}{map[string]interface{}{"version": 4, "addr": srv.Address, "OS-EXT-IPS:type": "fixed",
		"OS-EXT-IPS-MAC:mac_addr": mac}}
	for _, ip := range c.fips.of(srv.ID) {
		list = append(list, map[string]interface{}{"version": 4, "addr": ip, "OS-EXT-IPS:type": "floating",
			"OS-EXT-IPS-MAC:mac_addr": mac})
	}
	out["private"] = list
	return out
}

// patch rewrites one server object of goose's answer with our view, and
// ticks the server's clock (a GET is a tick of its life).
func (c *compute) patch(obj map[string]interface{}) {
	id := fmt.Sprint(obj["id"])
	srv := c.servers[id]
	if srv == nil {
		return
	}
	status, vm, task := c.status(srv)
	obj["Status"] = status
	obj["Addresses"] = c.addresses(srv, status)
	obj["OS-EXT-STS:vm_state"] = vm
	obj["OS-EXT-STS:task_state"] = task
	obj["OS-EXT-STS:power_state"] = map[bool]int{true: 1, false: 0}[status == "ACTIVE"]
	obj["AddressIPv4"] = ""
	obj["AddressIPv6"] = ""
	obj["key_name"] = nil
	obj["id"] = id
	if status == "BUILD" {
		obj["Progress"] = 0
	} else {
		obj["Progress"] = 100
	}
	if srv.Fault != nil {
		obj["fault"] = srv.Fault
	}
	groups := []interface{}{}
	for _, g := range srv.Groups {
		groups = append(groups, map[string]string{"name": g})
	}
	obj["security_groups"] = groups
	srv.Gets++
	if srv.Deleting {
		srv.DeleteGets++
	}
}

func (c *compute) rewriteServers(rec *httptest.ResponseRecorder, parts []string) {
	var doc map[string]interface{}
	if json.Unmarshal(rec.Body.Bytes(), &doc) != nil {
		return
	}
	if one, ok := doc["server"].(map[string]interface{}); ok && len(parts) == 2 {
		c.patch(one)
	}
	if list, ok := doc["servers"].([]interface{}); ok && len(parts) == 2 && parts[1] == "detail" {
		for _, s := range list {
			if obj, ok := s.(map[string]interface{}); ok {
				c.patch(obj)
			}
		}
	}
	if list, ok := doc["servers"].([]interface{}); ok {
		for _, s := range list {
			if obj, ok := s.(map[string]interface{}); ok {
				obj["id"] = fmt.Sprint(obj["id"])
			}
		}
	}
	out, _ := json.Marshal(doc)
	rec.Body = bytes.NewBuffer(out)
	c.reap()
}

// reap removes from goose's Nova the servers whose deletion finished: the
// terminator exited and delete_gets GETs saw them deleting.
func (c *compute) reap() {
	for _, id := range c.order {
		srv := c.servers[id]
		if srv.Deleting && !srv.Gone && (srv.Terminator == "exited" || srv.Terminator == "none" ||
			srv.Terminator == "failed") && srv.DeleteGets >= c.deleteGets {
			srv.Gone = true
			rec := c.call("DELETE", "/v2/"+c.tenant+"/servers/"+id, nil, http.Header{"X-Auth-Token": {c.token}})
			if rec.Code != 204 {
				log.Printf("server %s: goose's DELETE answered %d: %s", id, rec.Code, rec.Body.String())
			}
		}
	}
}

func (c *compute) deleteServer(w http.ResponseWriter, r *http.Request, full, id string) {
	srv := c.servers[id]
	if srv == nil || srv.Gone {
		novaError(w, 404, "itemNotFound", "Instance could not be found")
		return
	}
	if !srv.Deleting {
		srv.Deleting = true
		c.fips.disassociateServer(srv.ID)
		c.startTerminator(srv)
	}
	c.reap()
	w.WriteHeader(204)
}

// startTerminator runs the terminator for srv (mu held); false when there
// is nothing to terminate.
func (c *compute) startTerminator(srv *server) bool {
	if srv.Terminator != "" && srv.Terminator != "none" {
		return false
	}
	if c.terminator == "" || srv.Launcher == "none" {
		srv.Terminator = "none"
		return false
	}
	srv.Terminator = "running"
	h := hosts.Host{ID: srv.ID, Name: srv.Name, Index: srv.Index, Address: srv.Address}
	c.hosts.Terminate(c.terminator, h, false, func(state, output string) {
		srv.Terminator, srv.TerminatorOutput = state, output
		if srv.Deleting {
			c.reap()
		}
	})
	return true
}

// serverAction handles addFloatingIp and removeFloatingIp (ours); false
// lets goose answer the other actions.
func (c *compute) serverAction(w http.ResponseWriter, r *http.Request, id string, body []byte) bool {
	var action struct {
		Add *struct {
			Address string `json:"address"`
		} `json:"addFloatingIp"`
		Remove *struct {
			Address string `json:"address"`
		} `json:"removeFloatingIp"`
	}
	if json.Unmarshal(body, &action) != nil || (action.Add == nil && action.Remove == nil) {
		return false
	}
	srv := c.servers[id]
	if srv == nil || srv.Gone {
		novaError(w, 404, "itemNotFound", "Instance "+id+" could not be found.")
		return true
	}
	if action.Add != nil {
		status, _, _ := c.status(srv)
		if srv.Address == "" || srv.Deleting || status == "ERROR" {
			// Nova has no fixed IP to NAT to until the instance has networking.
			novaError(w, 400, "badRequest", "No nw_info cache associated with instance")
			return true
		}
		if code, msg := c.fips.associate(action.Add.Address, srv.ID, srv.Address); code != 0 {
			novaError(w, code, map[int]string{404: "itemNotFound", 400: "badRequest"}[code], msg)
			return true
		}
	} else if code, msg := c.fips.disassociate(action.Remove.Address, srv.ID); code != 0 {
		novaError(w, code, map[int]string{404: "itemNotFound", 400: "badRequest"}[code], msg)
		return true
	}
	w.WriteHeader(202)
	return true
}

// groupUsed refuses to delete a security group a server not yet gone uses
// (Nova: "Security group is still in use").
func (c *compute) groupUsed(w http.ResponseWriter, r *http.Request, full, id string) bool {
	if !c.groupInUse {
		return false
	}
	rec := c.call("GET", full, nil, r.Header)
	if rec.Code != 200 {
		return false
	}
	var doc struct {
		Group struct {
			Name string `json:"name"`
		} `json:"security_group"`
	}
	json.Unmarshal(rec.Body.Bytes(), &doc)
	for _, sid := range c.order {
		srv := c.servers[sid]
		if srv.Gone {
			continue
		}
		for _, g := range srv.Groups {
			if g == doc.Group.Name {
				novaError(w, 400, "badRequest", "Security group is still in use")
				return true
			}
		}
	}
	return false
}

// terminateAll runs the terminator of every server not yet terminated and
// waits (at most timeout) for them: the fake's exit.
func (c *compute) terminateAll(timeout time.Duration) {
	c.mu.Lock()
	c.stopping = true
	for _, id := range c.order {
		c.startTerminator(c.servers[id])
	}
	c.fips.closeAll()
	c.mu.Unlock()
	c.settle(timeout)
}

// settle waits until every launcher answered and every terminator exited.
func (c *compute) settle(timeout time.Duration) bool { return c.hosts.Settle(timeout) }
