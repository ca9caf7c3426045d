#include "cli/grpc_security.h"

#include <arpa/inet.h>
#include <grpcpp/security/server_credentials.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pdkarchive::cli {
namespace {

// The host part of a gRPC listening address.
std::string_view HostOf(std::string_view listen) {
  if (!listen.empty() && listen.front() == '[') {
    const size_t end = listen.find(']');
    return end == std::string_view::npos ? listen : listen.substr(0, end + 1);
  }
  const size_t colon = listen.rfind(':');
  // Two colons or more without brackets: an IPv6 address with no port.
  if (colon == std::string_view::npos || listen.find(':') != colon)
    return listen;
  return listen.substr(0, colon);
}

absl::StatusOr<std::string> ReadPem(const char* flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--", flag, ": cannot read ", path));
  }
  return text.str();
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::unique_ptr<BIO, BioFree> MemoryBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::unique_ptr<X509, X509Free> FirstCertificate(const std::string& pem) {
  auto bio = MemoryBio(pem);
  return std::unique_ptr<X509, X509Free>(
      bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
}

}  // namespace

bool IsLoopbackHost(std::string_view host) {
  std::string text(host);
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  if (absl::EqualsIgnoreCase(text, "localhost")) return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

bool IsLocalAddress(std::string_view host_port) {
  if (host_port.rfind("unix:", 0) == 0 ||
      host_port.rfind("unix-abstract:", 0) == 0)
    return true;
  return IsLoopbackHost(HostOf(host_port));
}

absl::Status CheckGrpcExposure(const std::string& listen, bool tls,
                               bool holds_token, bool insecure) {
  if (insecure || IsLocalAddress(listen)) return absl::OkStatus();
  if (tls && holds_token) return absl::OkStatus();
  std::string missing;
  if (!tls) missing = "TLS (--grpc-tls-cert FILE --grpc-tls-key FILE)";
  if (!holds_token) {
    absl::StrAppend(&missing, missing.empty() ? "" : " and ",
                    "a token in the archive (pdk-archive tokens create NAME)");
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "refusing to serve gRPC on ", listen,
      ", which is not a loopback address, without ", missing,
      ": anyone who can reach it could read every person's movements. Add ",
      tls ? "a token" : (holds_token ? "TLS" : "both"),
      ", listen on 127.0.0.1, or pass --grpc-insecure to serve it unprotected "
      "all the same"));
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerTlsCredentials(
    const std::string& cert_file, const std::string& key_file,
    const std::string& client_ca_file) {
  absl::StatusOr<std::string> cert = ReadPem("grpc-tls-cert", cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem("grpc-tls-key", key_file);
  if (!key.ok()) return key.status();
  std::unique_ptr<X509, X509Free> leaf = FirstCertificate(*cert);
  if (leaf == nullptr) {
    ERR_clear_error();
    return absl::FailedPreconditionError(absl::StrCat(
        "--grpc-tls-cert ", cert_file, " holds no PEM certificate"));
  }
  auto key_bio = MemoryBio(*key);
  std::unique_ptr<EVP_PKEY, KeyFree> private_key(
      key_bio
          ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr)
          : nullptr);
  if (private_key == nullptr) {
    ERR_clear_error();
    return absl::FailedPreconditionError(
        absl::StrCat("--grpc-tls-key ", key_file,
                     " holds no PEM private key (or one with a passphrase)"));
  }
  if (X509_check_private_key(leaf.get(), private_key.get()) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError(
        absl::StrCat("--grpc-tls-key ", key_file,
                     " is not the key of the certificate in ", cert_file));
  }
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  if (!client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem("grpc-client-ca", client_ca_file);
    if (!ca.ok()) return ca.status();
    if (FirstCertificate(*ca) == nullptr) {
      ERR_clear_error();
      return absl::FailedPreconditionError(absl::StrCat(
          "--grpc-client-ca ", client_ca_file, " holds no PEM certificate"));
    }
    options.pem_root_certs = *std::move(ca);
    options.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  options.pem_key_cert_pairs.push_back({*std::move(key), *std::move(cert)});
  return grpc::SslServerCredentials(options);
}

}  // namespace pdkarchive::cli
