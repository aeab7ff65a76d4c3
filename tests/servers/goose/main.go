// goose-fake: an OpenStack double for the keystone and Swift specs, built
// from goose's testservices (Debian golang-gopkg-goose.v1-dev) on one HTTP
// listener, with a thin wrapper of our own where goose checks less than a
// real cloud.
//
// From goose (unchanged): Keystone v2 password (identityservice.UserPass) and
// access-key (identityservice.KeyPair) authentication, Keystone v3 password
// authentication (identityservice.V3UserPass, X-Subject-Token), the Swift
// object store (swiftservice: containers, objects, listings) and the Nova
// compute API (novaservice), the legacy v1.0 auth (identityservice.Legacy).
//
// Ours (this file), each following the real services' documented API:
//
//   - URL layout: auth URLs <base>/v2.0 and <base>/v3; Swift at
//     <base>/swift/v1 (RegionOne) and <base>/swift/v1r2 (RegionTwo); the
//     internal and admin endpoints of each are <base>/internal/... and
//     <base>/admin/... (same store), so endpoint-type selection is visible.
//
//   - v2 catalog JSON with the real lower-case "endpoints" key (goose writes
//     "Endpoints"), token expiry set to now+ttl (goose sends a fixed 2012
//     date), tenantName checked (goose ignores it).
//
//   - v3: the user's domain and the project name checked, "region" beside
//     goose's "region_id", expires_at now+ttl.
//
//   - Swift: X-Auth-Token required and checked (goose lets tokenless requests
//     through); marker/limit/end_marker listing pagination (goose ignores
//     them); HEAD with Content-Length; 409 for deleting a non-empty container
//     and 404 for an object PUT into a missing container (goose auto-creates);
//     account POST/HEAD of X-Account-Meta-Temp-URL-Key and the tempurl
//     middleware's check (HMAC-SHA1 of "METHOD\nexpires\npath").
//
//   - Legacy (v1.0) auth at <base>/auth/v1.0 with our service URLs.
//
//   - Test-only endpoints: POST /_test/revoke (new tokens; old ones get 401),
//     POST /_test/config?ttl=N&reject=0|1&fault=badjson|notoken|500&list_cap=N
//     (reject: every service call 401; fault: what authentication answers;
//     list_cap: the most names a listing page holds),
//     GET /_test/stats (counts of authentications and service calls).
//
//   - Compute (compute.go, floating.go, control.go): servers as real test
//     hosts (-launcher/-terminator), images, floating IPs as NAT, faults,
//     the journal, state and leftovers under /_test: see README.md.
//
// Credentials come from the environment (never the command line):
// GOOSE_USER, GOOSE_PASSWORD, GOOSE_TENANT, GOOSE_DOMAIN, GOOSE_ACCESS_KEY,
// GOOSE_SECRET_KEY. Flags: -addr host:port.
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"../hosts"
	"gopkg.in/goose.v1/testservices/identityservice"
	"gopkg.in/goose.v1/testservices/novaservice"
	"gopkg.in/goose.v1/testservices/swiftservice"
)

type creds struct {
	user, password, tenant, domain, accessKey, secretKey string
}

type fake struct {
	base  string
	creds creds

	v2pass *identityservice.UserPass
	v2key  *identityservice.KeyPair
	v3     *identityservice.V3UserPass
	legacy *identityservice.Legacy

	swifts map[string]*swiftservice.Swift // version path -> store
	nova   http.Handler

	mu       sync.Mutex
	ttl      time.Duration
	reject   bool
	fault    string
	listCap  int
	tempKey  string
	stats    map[string]int
	identity multiIdentity

	compute    *compute
	regions    map[string]string          // swift version path -> region
	containers map[string]map[string]bool // version -> container names
	acls       map[string]string          // "version/container" -> X-Container-Read
	faults     []*injected
	nfaults    int
	calls      []*call
	ncalls     int
}

// multiIdentity lets Nova accept a token from any of the three identity
// services (goose's services take one identity plus one fallback).
type multiIdentity struct {
	list     []identityservice.IdentityService
	internal string // the fake's own token (its calls to goose's Nova)
}

func (m multiIdentity) AddUser(user, secret, tenant, authDomain string) *identityservice.UserInfo {
	return nil
}
func (m multiIdentity) FindUser(token string) (*identityservice.UserInfo, error) {
	if token != "" && token == m.internal {
		return &identityservice.UserInfo{Id: "fake", TenantId: "1"}, nil
	}
	for _, s := range m.list {
		if u, err := s.FindUser(token); err == nil {
			return u, nil
		}
	}
	return nil, fmt.Errorf("no user with that token")
}
func (m multiIdentity) RegisterServiceProvider(name, serviceType string, p identityservice.ServiceProvider) {
}
func (m multiIdentity) AddService(service identityservice.Service) {}
func (m multiIdentity) SetupHTTP(mux *http.ServeMux)               {}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (f *fake) addUsers() {
	c := f.creds
	f.v2pass.AddUser(c.user, c.password, c.tenant, "default")
	f.v2key.AddUser(c.accessKey, c.secretKey, c.tenant, "default")
	f.v3.AddUser(c.user, c.password, c.tenant, c.domain)
	f.legacy.AddUser(c.user, c.password, c.tenant, "default")
}

func (f *fake) count(key string) {
	f.mu.Lock()
	f.stats[key]++
	f.mu.Unlock()
}

// catalog registers a service in every identity service with distinct
// public, internal and admin URLs.
func (f *fake) catalog(name, typ, region, path string) {
	pub := f.base + path
	internal := f.base + "/internal" + path
	admin := f.base + "/admin" + path
	v2 := identityservice.V2Service{Name: name, Type: typ, Endpoints: []identityservice.Endpoint{
		{AdminURL: admin, InternalURL: internal, PublicURL: pub, Region: region}}}
	v3 := identityservice.V3Service{ID: name + "-" + region, Name: name, Type: typ,
		Endpoints: identityservice.NewV3Endpoints(admin, internal, pub, region)}
	svc := identityservice.Service{V2: v2, V3: v3}
	f.v2pass.AddService(svc)
	f.v2key.AddService(svc)
	f.v3.AddService(svc)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "host:port to listen on")
	hostFlags := hosts.DefineFlags()
	addressPool := flag.String("address-pool", "127.0.100.1-254", "fixed addresses when there is no launcher")
	floatingPool := flag.String("floating-pool", "127.0.4.1-254", "floating IP addresses (A.B.C.X-Y or a list)")
	natPorts := flag.String("nat-ports", "22,17070,37017", "ports a floating IP forwards to the fixed address")
	images := flag.String("images", "", "image ids GET /images/{id} and POST /servers accept (comma-separated)")
	streams := flag.Bool("streams", false, "register product-streams (<swift>/imagemetadata) and juju-tools in the catalog")
	buildGets := flag.Int("build-gets", 1, "GETs a server stays BUILD (and until its launcher printed its address)")
	flag.Parse()
	f := &fake{
		base: "http://" + *addr,
		creds: creds{
			user: env("GOOSE_USER", "fred"), password: env("GOOSE_PASSWORD", "secret"),
			tenant: env("GOOSE_TENANT", "tenant"), domain: env("GOOSE_DOMAIN", "default"),
			accessKey: env("GOOSE_ACCESS_KEY", "access"), secretKey: env("GOOSE_SECRET_KEY", "secretkey"),
		},
		v2pass: identityservice.NewUserPass(),
		v2key:  identityservice.NewKeyPair(),
		v3:     identityservice.NewV3UserPass(),
		legacy: identityservice.NewLegacy(),
		swifts: map[string]*swiftservice.Swift{},
		ttl:    time.Hour,
		stats:  map[string]int{},

		regions:    map[string]string{"v1": "RegionOne", "v1r2": "RegionTwo"},
		containers: map[string]map[string]bool{"v1": {}, "v1r2": {}},
		acls:       map[string]string{},
	}
	f.identity = multiIdentity{[]identityservice.IdentityService{f.v2pass, f.v2key, f.v3, f.legacy}, randomHex(16)}
	f.addUsers()
	tenantId := "1" // the first tenant of every goose identity service

	f.swifts["v1"] = swiftservice.New(f.base, "v1", tenantId, "RegionOne", f.identity, nil)
	f.swifts["v1r2"] = swiftservice.New(f.base, "v1r2", tenantId, "RegionTwo", f.identity, nil)
	f.catalog("swift", "object-store", "RegionOne", "/swift/v1")
	f.catalog("swift", "object-store", "RegionTwo", "/swift/v1r2")

	nova := novaservice.New(f.base, "v2", tenantId, "RegionOne", f.identity, nil)
	novaMux := http.NewServeMux()
	nova.SetupHTTP(novaMux)
	f.nova = novaMux
	f.catalog("nova", "compute", "RegionOne", "/v2/"+tenantId)

	// Image metadata (simplestreams) in a public-read container, and the
	// Swift root as juju-tools, as goose's openstackservice registers them.
	f.swifts["v1"].AddContainer("imagemetadata")
	f.containers["v1"]["imagemetadata"] = true
	f.acls["v1/imagemetadata"] = ".r:*,.rlistings"
	if *streams {
		f.catalogPublic("simplestreams", "product-streams", "RegionOne", "/swift/v1/imagemetadata")
		f.catalogPublic("juju", "juju-tools", "RegionOne", "/swift/v1")
	}

	f.compute = newCompute(novaMux, tenantId, hostFlags.Dir("goose-fake-"), *hostFlags.Launcher, *hostFlags.Terminator)
	f.compute.token = f.identity.internal
	var err error
	if f.compute.pool, err = parsePool(*addressPool); err != nil {
		log.Fatalf("-address-pool: %v", err)
	}
	fpool, err := parsePool(*floatingPool)
	if err != nil {
		log.Fatalf("-floating-pool: %v", err)
	}
	var ports []int
	for _, p := range strings.Split(*natPorts, ",") {
		if p = strings.TrimSpace(p); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil {
				log.Fatalf("-nat-ports: %q is not a port", p)
			}
			ports = append(ports, n)
		}
	}
	f.compute.fips = newFloatingIPs(fpool, ports)
	f.compute.buildGets = *buildGets
	for _, id := range strings.Split(*images, ",") {
		if id != "" {
			f.compute.images[id] = "image-" + id
		}
	}

	// SIGTERM: terminate every server's host first, then exit.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		sig := <-sigs
		log.Printf("goose-fake: %v: terminating the servers' hosts", sig)
		f.compute.terminateAll(4 * time.Second)
		os.Exit(0)
	}()

	log.Printf("goose-fake listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, f))
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// catalogPublic registers a service with a public URL only (what goose's
// openstackservice does for product-streams and juju-tools).
func (f *fake) catalogPublic(name, typ, region, path string) {
	pub := f.base + path
	v2 := identityservice.V2Service{Name: name, Type: typ, Endpoints: []identityservice.Endpoint{
		{PublicURL: pub, Region: region}}}
	v3 := identityservice.V3Service{ID: name + "-" + region, Name: name, Type: typ,
		Endpoints: identityservice.NewV3Endpoints("", "", pub, region)}
	svc := identityservice.Service{V2: v2, V3: v3}
	f.v2pass.AddService(svc)
	f.v2key.AddService(svc)
	f.v3.AddService(svc)
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/_test/"):
		f.serveTest(w, r)
	case p == "/v2.0/tokens" || p == "/v2.0/tokens/":
		f.serveV2(w, r)
	case p == "/v3/auth/tokens":
		f.serveV3(w, r)
	case p == "/auth/v1.0":
		f.serveLegacy(w, r)
	case strings.HasPrefix(p, "/internal/"):
		f.count("via_internal")
		f.serveService(w, r, strings.TrimPrefix(p, "/internal"))
	case strings.HasPrefix(p, "/admin/"):
		f.count("via_admin")
		f.serveService(w, r, strings.TrimPrefix(p, "/admin"))
	default:
		f.count("via_public")
		f.serveService(w, r, p)
	}
}

func writeJSON(w http.ResponseWriter, status int, v interface{}) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

func keystoneError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]interface{}{"error": map[string]interface{}{
		"message": msg, "code": status, "title": http.StatusText(status)}})
}

func (f *fake) serveTest(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_test/revoke":
		f.mu.Lock()
		f.addUsers()
		f.mu.Unlock()
		writeJSON(w, 200, map[string]bool{"revoked": true})
	case "/_test/config":
		q := r.URL.Query()
		f.mu.Lock()
		if v := q.Get("ttl"); v != "" {
			n, _ := strconv.Atoi(v)
			f.ttl = time.Duration(n) * time.Second
		}
		if v := q.Get("reject"); v != "" {
			f.reject = v == "1"
		}
		if v := q.Get("list_cap"); v != "" {
			f.listCap, _ = strconv.Atoi(v)
		}
		if _, ok := q["fault"]; ok {
			f.fault = q.Get("fault")
		}
		f.mu.Unlock()
		if err := f.compute.config(q); err != nil {
			writeJSON(w, 400, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, 200, map[string]bool{"ok": true})
	case "/_test/stats":
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, 200, f.stats)
	default:
		if !f.serveComputeTest(w, r) {
			http.NotFound(w, r)
		}
	}
}

// forward runs a goose handler on a recorded copy of the request.
func forward(h http.Handler, r *http.Request, body []byte) *httptest.ResponseRecorder {
	r2 := r.Clone(r.Context())
	r2.Body = ioutil.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r2)
	return rec
}

func (f *fake) expiry() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Now().UTC().Add(f.ttl)
}

// authFault answers an authentication with the configured fault, if any:
// "badjson" (a 200 with a truncated body), "notoken" (a good answer without
// the token), "500".
func (f *fake) authFault(w http.ResponseWriter) (string, bool) {
	f.mu.Lock()
	fault := f.fault
	f.mu.Unlock()
	switch fault {
	case "badjson":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		w.Write([]byte(`{"access": {"token": {"id": "trunc`))
		return fault, true
	case "500":
		keystoneError(w, 500, "An unexpected error prevented the server from fulfilling your request.")
		return fault, true
	}
	return fault, false
}

// serveLegacy is the pre-Keystone (Swift/Nova 1.0) auth: GET with
// X-Auth-User/X-Auth-Key, 204 with X-Auth-Token and the two service URLs
// (goose's Legacy service; our URLs replace its fixed ones).
func (f *fake) serveLegacy(w http.ResponseWriter, r *http.Request) {
	f.count("auth_legacy")
	fault, done := f.authFault(w)
	if done {
		return
	}
	rec := forward(f.legacy, r, nil)
	if rec.Code == 204 {
		if fault != "notoken" {
			w.Header().Set("X-Auth-Token", rec.Header().Get("X-Auth-Token"))
		}
		w.Header().Set("X-Server-Management-Url", f.base+"/v2/1")
		w.Header().Set("X-Storage-Url", f.base+"/swift/v1")
	}
	w.WriteHeader(rec.Code)
}

func (f *fake) serveV2(w http.ResponseWriter, r *http.Request) {
	if r.Method != "POST" {
		keystoneError(w, 405, "Method Not Allowed")
		return
	}
	body, _ := ioutil.ReadAll(r.Body)
	var req struct {
		Auth struct {
			Key        *struct{} `json:"apiAccessKeyCredentials"`
			TenantName string    `json:"tenantName"`
		} `json:"auth"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		keystoneError(w, 400, "Expecting to find application/json in Content-Type header.")
		return
	}
	var h http.Handler = f.v2pass
	kind := "auth_v2_password"
	if req.Auth.Key != nil {
		h, kind = f.v2key, "auth_v2_accesskey"
	}
	f.count(kind)
	fault, done := f.authFault(w)
	if done {
		return
	}
	if req.Auth.TenantName != f.creds.tenant {
		keystoneError(w, 401, "The request you have made requires authentication.")
		return
	}
	rec := forward(h, r, body)
	if rec.Code != 200 {
		copyResponse(w, rec)
		return
	}
	var doc map[string]interface{}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		keystoneError(w, 500, err.Error())
		return
	}
	access := doc["access"].(map[string]interface{})
	token := access["token"].(map[string]interface{})
	token["expires"] = f.expiry().Format("2006-01-02T15:04:05Z")
	if fault == "notoken" {
		delete(token, "id")
	}
	token["tenant"].(map[string]interface{})["name"] = f.creds.tenant
	if cat, ok := access["serviceCatalog"].([]interface{}); ok {
		for _, s := range cat {
			svc := s.(map[string]interface{})
			svc["endpoints"] = svc["Endpoints"]
			delete(svc, "Endpoints")
		}
	}
	writeJSON(w, 200, doc)
}

func (f *fake) serveV3(w http.ResponseWriter, r *http.Request) {
	if r.Method != "POST" {
		keystoneError(w, 405, "Method Not Allowed")
		return
	}
	body, _ := ioutil.ReadAll(r.Body)
	var req identityservice.V3UserPassRequest
	if err := json.Unmarshal(body, &req); err != nil {
		keystoneError(w, 400, "Expecting to find application/json in Content-Type header.")
		return
	}
	f.count("auth_v3")
	fault, done := f.authFault(w)
	if done {
		return
	}
	// Domains by name, or by id "default" (Keystone's default domain).
	var ids struct {
		Auth struct {
			Identity struct {
				Password struct {
					User struct {
						Domain struct {
							ID string `json:"id"`
						} `json:"domain"`
					} `json:"user"`
				} `json:"password"`
			} `json:"identity"`
			Scope struct {
				Project struct {
					Domain struct {
						ID string `json:"id"`
					} `json:"domain"`
				} `json:"project"`
			} `json:"scope"`
		} `json:"auth"`
	}
	json.Unmarshal(body, &ids)
	domainOK := func(name, id string) bool {
		return (name != "" && name == f.creds.domain) || (name == "" && id == "default" && f.creds.domain == "default")
	}
	if !domainOK(req.Auth.Identity.Password.User.Domain.Name, ids.Auth.Identity.Password.User.Domain.ID) ||
		!domainOK(req.Auth.Scope.Project.Domain.Name, ids.Auth.Scope.Project.Domain.ID) ||
		req.Auth.Scope.Project.Name != f.creds.tenant ||
		len(req.Auth.Identity.Methods) != 1 || req.Auth.Identity.Methods[0] != "password" {
		keystoneError(w, 401, "The request you have made requires authentication.")
		return
	}
	rec := forward(f.v3, r, body)
	if rec.Code != 201 {
		copyResponse(w, rec)
		return
	}
	var doc map[string]interface{}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		keystoneError(w, 500, err.Error())
		return
	}
	token := doc["token"].(map[string]interface{})
	token["expires_at"] = f.expiry().Format(time.RFC3339)
	token["project"] = map[string]interface{}{"id": "1", "name": f.creds.tenant,
		"domain": map[string]string{"name": f.creds.domain}}
	if cat, ok := token["catalog"].([]interface{}); ok {
		for _, s := range cat {
			for _, e := range s.(map[string]interface{})["endpoints"].([]interface{}) {
				ep := e.(map[string]interface{})
				ep["region"] = ep["region_id"]
			}
		}
	}
	if fault != "notoken" {
		w.Header().Set("X-Subject-Token", rec.Header().Get("X-Subject-Token"))
	}
	writeJSON(w, 201, doc)
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

func (f *fake) tokenOK(r *http.Request) bool {
	f.mu.Lock()
	reject := f.reject
	f.mu.Unlock()
	if reject {
		return false
	}
	t := r.Header.Get("X-Auth-Token")
	if t == "" {
		return false
	}
	_, err := f.identity.FindUser(t)
	return err == nil
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.WriteHeader(401)
	w.Write([]byte("<html><h1>Unauthorized</h1><p>This server could not verify that you are authorized to access the document you requested.</p></html>"))
}

func (f *fake) serveService(w http.ResponseWriter, r *http.Request, p string) {
	if strings.HasPrefix(p, "/v2/") {
		f.count("nova")
		if !f.tokenOK(r) {
			unauthorized(w)
			return
		}
		rest := p
		if parts := strings.SplitN(p, "/", 4); len(parts) == 4 {
			rest = "/" + parts[3]
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = p
		f.journaled(w, r, "compute", r.Method+" "+template(rest), func(w http.ResponseWriter) {
			f.compute.serve(w, r2, p, rest)
		})
		return
	}
	if !strings.HasPrefix(p, "/swift/") {
		http.NotFound(w, r)
		return
	}
	parts := strings.SplitN(strings.TrimPrefix(p, "/swift/"), "/", 3)
	s := f.swifts[parts[0]]
	if s == nil {
		http.NotFound(w, r)
		return
	}
	f.count("swift")
	container, object := "", ""
	if len(parts) > 1 {
		container = parts[1]
	}
	if len(parts) > 2 {
		object = parts[2]
	}
	q := r.URL.Query()
	if q.Get("temp_url_sig") != "" || q.Get("temp_url_expires") != "" {
		if !f.tempURLOK(r, r.URL.Path) || object == "" {
			f.count("tempurl_refused")
			w.WriteHeader(401)
			w.Write([]byte("401 Unauthorized: Temp URL invalid\n"))
			return
		}
		f.count("tempurl_ok")
	} else if !f.tokenOK(r) {
		if !f.publicRead(parts[0], container, object, r) {
			f.count("swift_unauthorized")
			unauthorized(w)
			return
		}
		f.count("public_read")
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = p
	version := parts[0]
	f.journaledNamed(w, r, "object-store", r.Method+" "+swiftTemplate(container, object), container, object, func(w http.ResponseWriter) {
		switch {
		case container == "":
			f.serveAccount(w, r)
		case object == "":
			f.serveContainer(s, container, w, r2)
			f.trackContainer(s, version, container, r)
		default:
			f.serveObject(s, container, object, w, r2)
		}
	})
}

// publicRead is Swift's container ACL check for a request without a token:
// X-Container-Read ".r:*" lets anyone GET/HEAD objects, ".rlistings" list.
func (f *fake) publicRead(version, container, object string, r *http.Request) bool {
	if container == "" || (r.Method != "GET" && r.Method != "HEAD") {
		return false
	}
	f.mu.Lock()
	acl := f.acls[version+"/"+container]
	f.mu.Unlock()
	has := func(item string) bool {
		for _, a := range strings.Split(acl, ",") {
			if strings.TrimSpace(a) == item {
				return true
			}
		}
		return false
	}
	if object == "" {
		return has(".r:*") && has(".rlistings")
	}
	return has(".r:*")
}

// trackContainer keeps the container names (goose's Swift lists none) and
// the read ACLs set with PUT/POST X-Container-Read.
func (f *fake) trackContainer(s *swiftservice.Swift, version, container string, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := version + "/" + container
	if !s.HasContainer(container) {
		delete(f.containers[version], container)
		delete(f.acls, key)
		return
	}
	f.containers[version][container] = true
	if v, ok := r.Header["X-Container-Read"]; ok && (r.Method == "PUT" || r.Method == "POST") {
		if v[0] == "" {
			delete(f.acls, key)
		} else {
			f.acls[key] = v[0]
		}
	}
}

// containerNames lists a region's containers, sorted.
func (f *fake) containerNames(version string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []string{}
	for name := range f.containers[version] {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// tempURLOK is Swift's tempurl middleware check: a GET or HEAD before
// temp_url_expires whose temp_url_sig is the hex HMAC-SHA1, under the
// account's X-Account-Meta-Temp-URL-Key, of "GET\n<expires>\n<path>".
func (f *fake) tempURLOK(r *http.Request, p string) bool {
	if r.Method != "GET" && r.Method != "HEAD" {
		return false
	}
	f.mu.Lock()
	key := f.tempKey
	f.mu.Unlock()
	q := r.URL.Query()
	exp, err := strconv.ParseInt(q.Get("temp_url_expires"), 10, 64)
	if err != nil || key == "" || time.Now().Unix() >= exp {
		return false
	}
	mac := hmac.New(sha1.New, []byte(key))
	fmt.Fprintf(mac, "GET\n%d\n%s", exp, p)
	want := hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(q.Get("temp_url_sig")))
}

func (f *fake) serveAccount(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case "POST":
		if k, ok := r.Header["X-Account-Meta-Temp-Url-Key"]; ok {
			f.mu.Lock()
			f.tempKey = k[0]
			f.mu.Unlock()
		}
		w.WriteHeader(204)
	case "HEAD", "GET":
		f.mu.Lock()
		if f.tempKey != "" {
			w.Header().Set("X-Account-Meta-Temp-Url-Key", f.tempKey)
		}
		f.mu.Unlock()
		w.WriteHeader(204)
	default:
		w.WriteHeader(405)
	}
}

func (f *fake) serveContainer(s *swiftservice.Swift, container string, w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case "GET":
		if !s.HasContainer(container) {
			w.WriteHeader(404)
			return
		}
		q := r.URL.Query()
		items, err := s.ListContainer(container, map[string]string{"prefix": q.Get("prefix")})
		if err != nil {
			w.WriteHeader(500)
			return
		}
		sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
		limit := 10000
		if v := q.Get("limit"); v != "" {
			limit, _ = strconv.Atoi(v)
		}
		f.mu.Lock()
		if f.listCap > 0 && limit > f.listCap {
			limit = f.listCap // Swift's container_listing_limit
		}
		f.mu.Unlock()
		marker, end := q.Get("marker"), q.Get("end_marker")
		out := items[:0]
		for _, it := range items {
			if (marker != "" && it.Name <= marker) || (end != "" && it.Name >= end) {
				continue
			}
			if len(out) >= limit {
				break
			}
			out = append(out, it)
		}
		if q.Get("format") != "json" {
			var b strings.Builder
			for _, it := range out {
				b.WriteString(it.Name + "\n")
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(200)
			w.Write([]byte(b.String()))
			return
		}
		writeJSON(w, 200, out)
	case "DELETE":
		if s.HasContainer(container) {
			if items, _ := s.ListContainer(container, map[string]string{}); len(items) > 0 {
				w.WriteHeader(409)
				w.Write([]byte("<html><h1>Conflict</h1><p>There was a conflict when trying to complete your request.</p></html>"))
				return
			}
		}
		s.ServeHTTP(w, r)
	default:
		s.ServeHTTP(w, r)
	}
}

func (f *fake) serveObject(s *swiftservice.Swift, container, object string, w http.ResponseWriter, r *http.Request) {
	if !s.HasContainer(container) {
		w.WriteHeader(404)
		w.Write([]byte("404 Not Found\n\nThe resource could not be found.\n"))
		return
	}
	switch r.Method {
	case "HEAD", "GET":
		data, err := s.GetObject(container, object)
		if err != nil {
			w.WriteHeader(404)
			return
		}
		sum := md5.Sum(data)
		w.Header().Set("Etag", hex.EncodeToString(sum[:]))
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(200)
		if r.Method == "GET" {
			w.Write(data)
		}
	case "PUT":
		// Swift refuses a body whose MD5 differs from the ETag sent (422).
		body, _ := ioutil.ReadAll(r.Body)
		sum := md5.Sum(body)
		if etag := r.Header.Get("Etag"); etag != "" && !strings.EqualFold(etag, hex.EncodeToString(sum[:])) {
			f.count("etag_mismatch")
			w.WriteHeader(422)
			w.Write([]byte("<html><h1>Unprocessable Entity</h1><p>Unable to process the contained instructions</p></html>"))
			return
		}
		rec := forward(s, r, body)
		if rec.Code == 201 {
			if data, err := s.GetObject(container, object); err == nil {
				sum := md5.Sum(data)
				rec.Header().Set("Etag", hex.EncodeToString(sum[:]))
			}
		}
		copyResponse(w, rec)
	default:
		s.ServeHTTP(w, r)
	}
}
