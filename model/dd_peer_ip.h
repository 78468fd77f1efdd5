/* Peer tag values with IP addresses quantized, as the Agent aggregates them.
 *
 * Why: a client span's peer tags (server.address, net.peer.name, db.hostname,
 * kafka bootstrap servers...) often hold IP addresses, one per pod or
 * replica; aggregated as they are, every address would be a stats key of
 * its own. The Agent replaces them before aggregating (datadog-agent
 * pkg/trace/stats span_concentrator.go matchingPeerTags, which calls
 * pkg/obfuscate ip_address.go QuantizePeerIPAddresses): in a comma
 * separated list, each entry that is an IPv4 address (with '.', '-' or '_'
 * between the octets, trailing text kept) or an IPv6 address, optionally
 * with a port, after an optional "ip-" or "<scheme>://" prefix (dnspoll,
 * ftp, file, http, https), becomes "blocked-ip-address" (the prefix, the
 * port and the trailing text kept); loopback and cloud metadata addresses
 * stay; entries equal after that are kept once. */
#ifndef SP_DD_PEER_IP_H
#define SP_DD_PEER_IP_H

#include <stddef.h>

/* Writes the quantized value of raw into out (NUL-terminated) and returns
 * its length; returns 0 when raw is unchanged (out untouched) or when the
 * result would not fit in cap (the caller keeps raw). */
size_t sp_dd_quantize_peer_ips(const char *raw, char *out, size_t cap);

#endif
