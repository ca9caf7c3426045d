// Throwaway TLS material for tests, made with OpenSSL's API (no network, no
// openssl command): a CA, a server certificate for 127.0.0.1 and localhost,
// and a client certificate, all signed by the CA, as PEM files.
#ifndef PDKARCHIVE_TESTS_TEST_SUPPORT_TLS_CERTS_H_
#define PDKARCHIVE_TESTS_TEST_SUPPORT_TLS_CERTS_H_

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"

namespace pdkarchive::testing {

// The paths of the PEM files WriteTlsCertificates made.
struct TlsFiles {
  std::string ca_cert;      // the CA (self-signed, CA:TRUE)
  std::string server_cert;  // SAN IP:127.0.0.1, DNS:localhost; serverAuth
  std::string server_key;
  std::string client_cert;  // CN=pdk-archive-test-client; clientAuth
  std::string client_key;
};

// Makes a fresh CA (P-256 keys, valid from an hour ago for two days) and the
// certificates it signs, written into `dir` (which must exist). Internal
// with OpenSSL's error text when any step fails.
absl::StatusOr<TlsFiles> WriteTlsCertificates(const std::filesystem::path& dir);

}  // namespace pdkarchive::testing

#endif  // PDKARCHIVE_TESTS_TEST_SUPPORT_TLS_CERTS_H_
