// How `serve` secures its gRPC port: TLS and mTLS credentials from PEM files,
// and the rule that keeps an unprotected query port off the network.
#ifndef PDKARCHIVE_CLI_GRPC_SECURITY_H_
#define PDKARCHIVE_CLI_GRPC_SECURITY_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace grpc {
class ServerCredentials;
}  // namespace grpc

namespace pdkarchive::cli {

// True when `host` is a loopback host: an IPv4 address in 127.0.0.0/8
// (also as ::ffff:127.x.y.z), ::1, or "localhost". Brackets around an IPv6
// address are allowed.
bool IsLoopbackHost(std::string_view host);

// True when gRPC address `host_port` (HOST:PORT, [IPV6]:PORT, or a unix:
// socket) stays on this machine: a unix socket, or a loopback HOST.
bool IsLocalAddress(std::string_view host_port);

// Whether gRPC may listen on `listen` (HOST:PORT, [IPV6]:PORT, or a
// unix: socket) with this protection. A loopback host or a unix socket is
// always allowed; any other (0.0.0.0, [::], a LAN address, a host name)
// only when `tls` is on and the archive `holds_token`, or when `insecure`
// (--grpc-insecure) says so. FailedPrecondition says what is missing and
// names --grpc-insecure.
absl::Status CheckGrpcExposure(const std::string& listen, bool tls,
                               bool holds_token, bool insecure);

// Server credentials for TLS with the certificate chain and private key in
// the PEM files `cert_file` and `key_file`; with a non-empty
// `client_ca_file`, clients must also present a certificate signed by a CA
// in that file (mTLS). FailedPrecondition names the file that cannot be read
// or parsed, or a key that does not match the certificate.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerTlsCredentials(
    const std::string& cert_file, const std::string& key_file,
    const std::string& client_ca_file);

}  // namespace pdkarchive::cli

#endif  // PDKARCHIVE_CLI_GRPC_SECURITY_H_
