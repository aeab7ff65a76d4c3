// nodes.go: the node life cycle gomaasapi's TestServer does not drive (its
// acquire only marks a node owned, its start records the call and changes
// nothing): Ready -> Allocated (acquire) -> Deploying (start: the launcher
// runs with the user-data) -> Deployed (the launcher printed the node's
// address, now in ip_addresses) or Failed deployment; release -> Releasing
// (the terminator runs) -> Ready. gomaasapi keeps the node objects; this
// file keeps what a real MAAS adds and mirrors it into them (status,
// agent_name, ip_addresses). See README.md.
package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io/ioutil"
	"log"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"../hosts"
	"github.com/juju/gomaasapi"
)

// MAAS 1.x status names and gomaasapi's codes for them.
var statusCodes = map[string]string{
	"Ready": gomaasapi.NodeStatusReady, "Allocated": gomaasapi.NodeStatusAllocated,
	"Deploying": gomaasapi.NodeStatusDeploying, "Deployed": gomaasapi.NodeStatusDeployed,
	"Failed deployment": gomaasapi.NodeStatusFailedDeployment, "Releasing": gomaasapi.NodeStatusReleasing,
}

// node is our record of one gomaasapi node.
type node struct {
	SystemID     string   `json:"system_id"`
	Hostname     string   `json:"hostname"`
	Arch         string   `json:"architecture"`
	CPUs         int      `json:"cpu_count"`
	Mem          int      `json:"memory"`
	Zone         string   `json:"zone"`
	Tags         []string `json:"tag_names"`
	Status       string   `json:"status"`
	AgentName    string   `json:"agent_name"`
	Index        int      `json:"index"` // 1, 2, ... per start over the server's life; 0 before
	Address      string   `json:"address"`
	DistroSeries string   `json:"distro_series"`
	UserDataFile string   `json:"user_data_file"`
	UserDataSize int      `json:"user_data_size"`
	UserDataGzip bool     `json:"user_data_gzip"`
	Polls        int      `json:"polls"` // deployment_status queries while Deploying without a launcher
	// launcher: "" (never started), "none" (no -launcher), "running", "answered", "failed".
	Launcher       string `json:"launcher"`
	LauncherOutput string `json:"launcher_output"`
	// terminator: "" (not released since the start), "none", "running", "exited", "failed".
	Terminator       string `json:"terminator"`
	TerminatorOutput string `json:"terminator_output"`
	Starts           int    `json:"starts"`
	Releases         int    `json:"releases"`
}

// cloud is the node side of the server. mu guards it and gomaasapi's
// TestServer (one request at a time, as before).
type cloud struct {
	mu          *sync.Mutex
	hosts       *hosts.Tracker
	ts          *gomaasapi.TestServer
	client      gomaasapi.Client
	dir         string
	launcher    string
	terminator  string
	nodes       map[string]*node
	order       []string
	added       int
	index       int
	deployPolls int  // deployment_status queries a node stays Deploying without a launcher
	failDeploy  int  // the next N starts fail their deployment
	noLaunch    bool // launcher=0: starts run no launcher (deploy_polls decides)
	prefix      string
}

func newCloud(mu *sync.Mutex, ts *gomaasapi.TestServer, prefix, dir, launcher, terminator string) *cloud {
	client, err := gomaasapi.NewAnonymousClient(ts.URL, "1.0")
	if err != nil {
		log.Fatal(err)
	}
	c := &cloud{mu: mu, ts: ts, prefix: prefix, client: *client, dir: dir, launcher: launcher, terminator: terminator,
		nodes: map[string]*node{}, deployPolls: 1}
	c.hosts = hosts.NewTracker(mu, "node")
	return c
}

// addNodes adds n Ready nodes (mu held).
func (c *cloud) addNodes(n int, arch string, cpus, mem int, zone string, tags []string) []string {
	var ids []string
	for i := 0; i < n; i++ {
		c.added++
		id := fmt.Sprintf("node-%04d", c.added)
		host := fmt.Sprintf("node-%04d.maas", c.added)
		tagJSON := `[]`
		if len(tags) > 0 {
			tagJSON = `["` + strings.Join(tags, `","`) + `"]`
		}
		c.ts.NewNode(fmt.Sprintf(`{"system_id": %q, "hostname": %q, "architecture": %q, "cpu_count": %d,
			"memory": %d, "status": %q, "zone": %q, "tag_names": %s, "ip_addresses": [], "power_state": "off"}`,
			id, host, arch, cpus, mem, gomaasapi.NodeStatusReady, zone, tagJSON))
		// as a region controller under a prefix writes it: /MAAS/api/1.0/nodes/<id>/
		c.ts.ChangeNode(id, "resource_uri", c.prefix+"/api/1.0/nodes/"+id+"/")
		c.nodes[id] = &node{SystemID: id, Hostname: host, Status: "Ready", Arch: arch, CPUs: cpus, Mem: mem,
			Zone: zone, Tags: append([]string{}, tags...)}
		c.order = append(c.order, id)
		ids = append(ids, id)
	}
	return ids
}

// choose is the first free node (in the order they were added) matching an
// acquire's constraints as MAAS 1.x reads them, or nil (mu held). gomaasapi
// matches fewer (no cpu_count, not_tags; tags never match its list field)
// and in random order: the wrapper chooses, gomaasapi acquires that node by
// name.
func (c *cloud) choose(f url.Values) *node {
	atLeast := func(have int, key string) bool {
		v := f.Get(key)
		if v == "" {
			return true
		}
		want, err := strconv.ParseFloat(v, 64)
		return err == nil && float64(have) >= want
	}
	hasTag := func(n *node, t string) bool {
		for _, x := range n.Tags {
			if x == t {
				return true
			}
		}
		return false
	}
	list := func(key string) []string {
		var out []string
		for _, v := range f[key] {
			for _, t := range strings.Split(v, ",") {
				if t = strings.TrimSpace(t); t != "" {
					out = append(out, t)
				}
			}
		}
		return out
	}
next:
	for _, id := range c.order {
		n := c.nodes[id]
		if c.owned(id) || n.Status != "Ready" {
			continue
		}
		if a := f.Get("arch"); a != "" && a != n.Arch && a != strings.SplitN(n.Arch, "/", 2)[0] {
			continue
		}
		if z := f.Get("zone"); z != "" && z != n.Zone {
			continue
		}
		if name := f.Get("name"); name != "" && name != n.Hostname && name != n.SystemID {
			continue
		}
		if !atLeast(n.CPUs, "cpu_count") || !atLeast(n.Mem, "mem") {
			continue
		}
		for _, t := range list("tags") {
			if !hasTag(n, t) {
				continue next
			}
		}
		for _, t := range list("not_tags") {
			if hasTag(n, t) {
				continue next
			}
		}
		return n
	}
	return nil
}

// mirror writes our view of n into gomaasapi's node object (mu held).
func (c *cloud) mirror(n *node) {
	obj, ok := c.ts.Nodes()[n.SystemID]
	if !ok {
		return
	}
	m := obj.GetMap()
	c.ts.ChangeNode(n.SystemID, "status", statusCodes[n.Status])
	if n.AgentName == "" {
		delete(m, "agent_name")
	} else {
		c.ts.ChangeNode(n.SystemID, "agent_name", n.AgentName)
	}
	addrs := []string{}
	if n.Address != "" {
		addrs = append(addrs, n.Address)
	}
	if j, err := gomaasapi.JSONObjectFromStruct(c.client, addrs); err == nil {
		m["ip_addresses"] = j
	}
}

func (c *cloud) owned(id string) bool { return c.ts.OwnedNodes()[id] }

// acquired marks the node gomaasapi's acquire chose (mu held).
func (c *cloud) acquired(id, agent string) {
	n := c.nodes[id]
	if n == nil {
		return
	}
	n.Status, n.AgentName, n.Address = "Allocated", agent, ""
	n.Terminator, n.TerminatorOutput = "", ""
	c.mirror(n)
}

// start begins the deployment of an allocated node (mu held): user_data
// is the base64 text as sent. Returns an HTTP status and message on refusal.
func (c *cloud) start(id, userData, series string) (int, string) {
	n := c.nodes[id]
	if n == nil {
		return 404, "Not Found"
	}
	if !c.owned(id) || n.Status != "Allocated" {
		return 409, fmt.Sprintf("Node %s cannot be started: it is %s, not Allocated.", id, n.Status)
	}
	data, err := base64.StdEncoding.DecodeString(userData)
	if err != nil {
		return 400, "user_data: not valid base64"
	}
	c.index++
	n.Index, n.Starts, n.DistroSeries, n.Polls = c.index, n.Starts+1, series, 0
	n.UserDataSize, n.UserDataGzip = len(data), bytes.HasPrefix(data, []byte{0x1f, 0x8b})
	n.UserDataFile = filepath.Join(c.dir, "user-data-"+id)
	if err := ioutil.WriteFile(n.UserDataFile, data, 0600); err != nil {
		log.Printf("cannot write %s: %v", n.UserDataFile, err)
	}
	n.Status, n.LauncherOutput = "Deploying", ""
	switch {
	case c.failDeploy > 0:
		c.failDeploy--
		n.Launcher, n.Status = "none", "Failed deployment"
	case c.launcher != "" && !c.noLaunch:
		n.Launcher = "running"
		c.hosts.Start()
		go c.launch(n)
	default:
		n.Launcher = "none"
	}
	c.mirror(n)
	return 0, ""
}

// launch runs the launcher for n: its first stdout line is the address.
func (c *cloud) launch(n *node) {
	c.mu.Lock()
	line, h := c.launcher, hosts.Host{ID: n.SystemID, Name: n.Hostname, Index: n.Index, UserDataFile: n.UserDataFile}
	c.mu.Unlock()
	output, err := c.hosts.Launch(line, h, func(address string) {
		n.Address, n.Launcher, n.Status = address, "answered", "Deployed"
		c.mirror(n)
	})
	defer c.mu.Unlock()
	n.LauncherOutput = output
	if n.Launcher == "running" {
		c.hosts.Done()
		n.Launcher = "failed"
		if n.Status == "Deploying" {
			n.Status = "Failed deployment"
			c.mirror(n)
		}
		log.Printf("node %s: launcher failed (%v): %s", n.SystemID, err, output)
	}
}

// deploymentStatus answers op=deployment_status for the ids (mu held): a
// query is a tick of a deployment without a launcher.
func (c *cloud) deploymentStatus(ids []string) map[string]string {
	out := map[string]string{}
	for _, id := range ids {
		n := c.nodes[id]
		if n == nil {
			continue
		}
		if n.Status == "Deploying" && n.Launcher == "none" {
			n.Polls++
			if n.Polls > c.deployPolls {
				n.Status, n.Address = "Deployed", fmt.Sprintf("192.0.2.%d", n.Index%250+1)
				c.mirror(n)
			}
		}
		switch n.Status {
		case "Deploying", "Deployed", "Failed deployment":
			out[id] = n.Status
		default:
			out[id] = "Not in Deployment"
		}
	}
	return out
}

// release ends an owned node's allocation (mu held; after gomaasapi's own
// release): the terminator runs when a launcher started a host.
func (c *cloud) release(id string) {
	n := c.nodes[id]
	if n == nil {
		return
	}
	n.Releases++
	n.AgentName = ""
	if !c.startTerminator(n) {
		n.Status, n.Address = "Ready", ""
	} else {
		n.Status = "Releasing"
	}
	c.mirror(n)
}

// startTerminator runs the terminator for n (mu held); false when there
// is no host to terminate.
func (c *cloud) startTerminator(n *node) bool {
	if n.Terminator == "running" || n.Terminator == "exited" || n.Terminator == "failed" {
		return false
	}
	if c.terminator == "" || n.Launcher == "" || n.Launcher == "none" {
		n.Terminator = "none"
		return false
	}
	n.Terminator = "running"
	h := hosts.Host{ID: n.SystemID, Name: n.Hostname, Index: n.Index, Address: n.Address}
	c.hosts.Terminate(c.terminator, h, true, func(state, output string) {
		n.Terminator, n.TerminatorOutput = state, output
		if n.Status == "Releasing" {
			n.Status, n.Address = "Ready", ""
			c.mirror(n)
		}
	})
	return true
}

// leftovers: nodes allocated, deploying, deployed or releasing (mu held).
func (c *cloud) leftovers() []string {
	out := []string{}
	for _, id := range c.order {
		if n := c.nodes[id]; n.Status != "Ready" || c.owned(id) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// settle waits (mu NOT held) until every launcher answered and every
// terminator exited, at most timeout.
func (c *cloud) settle(timeout time.Duration) bool { return c.hosts.Settle(timeout) }

// terminateAll runs the terminator of every started host not yet
// terminated and waits for them (at most timeout): the server's exit.
func (c *cloud) terminateAll(timeout time.Duration) {
	c.mu.Lock()
	for _, id := range c.order {
		n := c.nodes[id]
		if n.Launcher != "" && n.Launcher != "none" {
			c.startTerminator(n)
		}
	}
	c.mu.Unlock()
	c.settle(timeout)
}
