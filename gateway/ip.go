package gateway

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address a request came from: the TCP peer, or — when
// the peer is a trusted proxy — the rightmost X-Forwarded-For entry that
// is not itself a trusted proxy. Entries left of the first untrusted one
// are the client's own claims and are never believed. An unparsable
// entry ends the walk at the last trusted hop, so a garbled header cannot
// make a proxy's address pass for an allowed client.
func clientAddr(req *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(req.RemoteAddr)
	var peer netip.Addr
	if err == nil {
		peer = ap.Addr().Unmap()
	} else if a, aerr := netip.ParseAddr(req.RemoteAddr); aerr == nil {
		peer = a.Unmap()
	} else {
		return netip.Addr{}, false
	}
	if !contains(trusted, peer) {
		return peer, true
	}
	hops := req.Header.Values("X-Forwarded-For")
	var entries []string
	for _, h := range hops {
		entries = append(entries, strings.Split(h, ",")...)
	}
	client := peer
	for i := len(entries) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(entries[i]))
		if err != nil {
			return client, true
		}
		client = a.Unmap()
		if !contains(trusted, client) {
			return client, true
		}
	}
	return client, true
}

func contains(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
