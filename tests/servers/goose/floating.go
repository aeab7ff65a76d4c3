// floating.go: Nova's os-floating-ips (nova-network) as real NAT. Addresses
// come from a pool of loopback addresses (-floating-pool); while one is
// associated with a server the fake listens on floating:PORT for each of
// -nat-ports and copies TCP both ways to the server's fixed address:PORT,
// so SSH to the floating IP reaches the host, as in a real cloud. goose's
// own floating IPs (10.0.0.N, no NAT, not disassociated on server delete)
// are not used.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
)

type floatingIP struct {
	ID       int    `json:"id"`
	IP       string `json:"ip"`
	Pool     string `json:"pool"`
	FixedIP  string `json:"fixed_ip,omitempty"`
	Instance string `json:"instance_id,omitempty"`
	// NAT listeners while associated
	listeners []net.Listener
	conns     map[net.Conn]bool
	connMu    sync.Mutex
}

type floatingIPs struct {
	pool     []string
	ports    []int
	next     int
	byID     map[int]*floatingIP
	poolName string
}

func newFloatingIPs(pool []string, ports []int) *floatingIPs {
	return &floatingIPs{pool: pool, ports: ports, byID: map[int]*floatingIP{}, poolName: "nova"}
}

func (f *floatingIPs) json(ip *floatingIP) map[string]interface{} {
	m := map[string]interface{}{"id": ip.ID, "ip": ip.IP, "pool": ip.Pool, "fixed_ip": nil, "instance_id": nil}
	if ip.Instance != "" {
		m["fixed_ip"] = ip.FixedIP
		m["instance_id"] = ip.Instance
	}
	return m
}

func (f *floatingIPs) sorted() []*floatingIP {
	ids := make([]int, 0, len(f.byID))
	for id := range f.byID {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	out := make([]*floatingIP, len(ids))
	for i, id := range ids {
		out[i] = f.byID[id]
	}
	return out
}

func (f *floatingIPs) byAddr(addr string) *floatingIP {
	for _, ip := range f.byID {
		if ip.IP == addr {
			return ip
		}
	}
	return nil
}

// of lists the floating addresses associated with server id.
func (f *floatingIPs) of(id string) []string {
	var out []string
	for _, ip := range f.sorted() {
		if ip.Instance == id {
			out = append(out, ip.IP)
		}
	}
	return out
}

// serve answers /os-floating-ips[/id] (c.mu held).
func (f *floatingIPs) serve(c *compute, w http.ResponseWriter, r *http.Request, parts []string, body []byte) {
	switch {
	case len(parts) == 1 && r.Method == "GET":
		list := []interface{}{}
		for _, ip := range f.sorted() {
			list = append(list, f.json(ip))
		}
		writeJSON(w, 200, map[string]interface{}{"floating_ips": list})
	case len(parts) == 1 && r.Method == "POST":
		var req struct {
			Pool string `json:"pool"`
		}
		json.Unmarshal(body, &req)
		if req.Pool != "" && req.Pool != f.poolName {
			novaError(w, 404, "itemNotFound", "Floating ip pool not found.")
			return
		}
		// The first pool address not allocated.
		for _, addr := range f.pool {
			if f.byAddr(addr) == nil {
				f.next++
				ip := &floatingIP{ID: f.next, IP: addr, Pool: f.poolName}
				f.byID[ip.ID] = ip
				writeJSON(w, 200, map[string]interface{}{"floating_ip": f.json(ip)})
				return
			}
		}
		novaError(w, 404, "itemNotFound", "No more floating ips in pool "+f.poolName+".")
	case len(parts) == 2 && (r.Method == "GET" || r.Method == "DELETE"):
		id, _ := strconv.Atoi(parts[1])
		ip := f.byID[id]
		if ip == nil {
			novaError(w, 404, "itemNotFound", "Floating ip not found for id "+parts[1])
			return
		}
		if r.Method == "GET" {
			writeJSON(w, 200, map[string]interface{}{"floating_ip": f.json(ip)})
			return
		}
		f.stopNAT(ip)
		delete(f.byID, id)
		w.WriteHeader(202)
	default:
		novaError(w, 405, "badMethod", "The method specified is not allowed for this resource.")
	}
}

// associate NATs addr to server id's fixed address (moving it from another
// server, as nova-network does); a non-zero code is the error to answer.
func (f *floatingIPs) associate(addr, id, fixed string) (int, string) {
	ip := f.byAddr(addr)
	if ip == nil {
		return 404, "floating ip not found"
	}
	if ip.Instance == id {
		return 0, ""
	}
	f.stopNAT(ip)
	ip.Instance, ip.FixedIP = id, fixed
	if err := f.startNAT(ip); err != nil {
		log.Printf("floating ip %s: %v", addr, err)
		f.stopNAT(ip)
		ip.Instance, ip.FixedIP = "", ""
		return 500, "cannot NAT " + addr + ": " + err.Error()
	}
	return 0, ""
}

func (f *floatingIPs) disassociate(addr, id string) (int, string) {
	ip := f.byAddr(addr)
	if ip == nil {
		return 404, "floating ip not found"
	}
	if ip.Instance != id {
		return 400, fmt.Sprintf("Floating ip %s is not associated with instance %s.", addr, id)
	}
	f.stopNAT(ip)
	ip.Instance, ip.FixedIP = "", ""
	return 0, ""
}

// disassociateServer frees every floating IP of a deleted server (they stay
// allocated to the project, as in nova-network).
func (f *floatingIPs) disassociateServer(id string) {
	for _, ip := range f.byID {
		if ip.Instance == id {
			f.stopNAT(ip)
			ip.Instance, ip.FixedIP = "", ""
		}
	}
}

func (f *floatingIPs) closeAll() {
	for _, ip := range f.byID {
		f.stopNAT(ip)
	}
}

func (f *floatingIPs) startNAT(ip *floatingIP) error {
	ip.conns = map[net.Conn]bool{}
	for _, port := range f.ports {
		l, err := net.Listen("tcp", net.JoinHostPort(ip.IP, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		ip.listeners = append(ip.listeners, l)
		go f.accept(ip, l, net.JoinHostPort(ip.FixedIP, strconv.Itoa(port)))
	}
	return nil
}

func (f *floatingIPs) accept(ip *floatingIP, l net.Listener, target string) {
	for {
		in, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			out, err := net.Dial("tcp", target)
			if err != nil {
				// as a NAT to a closed port: the connection is refused (reset)
				if tc, ok := in.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
				in.Close()
				return
			}
			ip.connMu.Lock()
			ip.conns[in], ip.conns[out] = true, true
			ip.connMu.Unlock()
			done := make(chan struct{}, 2)
			pipe := func(dst, src net.Conn) {
				io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go pipe(out, in)
			go pipe(in, out)
			<-done
			<-done
			in.Close()
			out.Close()
			ip.connMu.Lock()
			delete(ip.conns, in)
			delete(ip.conns, out)
			ip.connMu.Unlock()
		}()
	}
}

// stopNAT closes the listeners and the connections through them.
func (f *floatingIPs) stopNAT(ip *floatingIP) {
	for _, l := range ip.listeners {
		l.Close()
	}
	ip.listeners = nil
	ip.connMu.Lock()
	for conn := range ip.conns {
		conn.Close()
	}
	ip.conns = map[net.Conn]bool{}
	ip.connMu.Unlock()
}
