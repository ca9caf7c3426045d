#include "tests/test_support/tls_certs.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace pdkarchive::testing {
namespace {

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;

absl::Status OpenSslError(const char* what) {
  char text[256] = "unknown error";
  if (unsigned long code = ERR_get_error(); code != 0)
    ERR_error_string_n(code, text, sizeof text);
  ERR_clear_error();
  return absl::InternalError(absl::StrCat(what, ": ", text));
}

// A certificate for `key` named CN=`common_name`, with `extensions` (pairs of
// NID and OpenSSL's config text), signed by `issuer`/`issuer_key`, or
// self-signed when `issuer` is null.
absl::StatusOr<Cert> MakeCertificate(
    EVP_PKEY* key, const std::string& common_name, long serial,
    const std::vector<std::pair<int, std::string>>& extensions, X509* issuer,
    EVP_PKEY* issuer_key) {
  Cert cert(X509_new());
  if (cert == nullptr || X509_set_version(cert.get(), 2) != 1 ||
      ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), 2 * 86400) == nullptr ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return OpenSslError("making a certificate");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(
          name, "CN", MBSTRING_ASC,
          reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
          0) != 1 ||
      X509_set_issuer_name(cert.get(), issuer != nullptr
                                           ? X509_get_subject_name(issuer)
                                           : name) != 1) {
    return OpenSslError("naming a certificate");
  }
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer != nullptr ? issuer : cert.get(), cert.get(),
                 nullptr, nullptr, 0);
  for (const auto& [nid, value] : extensions) {
    X509_EXTENSION* extension =
        X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
    if (extension == nullptr) return OpenSslError("making an extension");
    const int added = X509_add_ext(cert.get(), extension, -1);
    X509_EXTENSION_free(extension);
    if (added != 1) return OpenSslError("adding an extension");
  }
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key,
                EVP_sha256()) <= 0) {
    return OpenSslError("signing a certificate");
  }
  return cert;
}

// Writes `write`'s PEM output to `path`.
template <typename Write>
absl::Status WritePem(const std::filesystem::path& path, Write write) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || write(bio.get()) != 1)
    return OpenSslError("writing PEM");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data, size);
  out.close();
  if (!out)
    return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

absl::Status WriteCertAndKey(const std::filesystem::path& cert_path, X509* cert,
                             const std::filesystem::path& key_path,
                             EVP_PKEY* key) {
  if (absl::Status s = WritePem(
          cert_path, [cert](BIO* b) { return PEM_write_bio_X509(b, cert); });
      !s.ok()) {
    return s;
  }
  if (key_path.empty()) return absl::OkStatus();
  return WritePem(key_path, [key](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr,
                                    nullptr);
  });
}

}  // namespace

absl::StatusOr<TlsFiles> WriteTlsCertificates(
    const std::filesystem::path& dir) {
  Key ca_key(EVP_EC_gen("P-256"));
  Key server_key(EVP_EC_gen("P-256"));
  Key client_key(EVP_EC_gen("P-256"));
  if (ca_key == nullptr || server_key == nullptr || client_key == nullptr) {
    return OpenSslError("making keys");
  }
  absl::StatusOr<Cert> ca =
      MakeCertificate(ca_key.get(), "pdk-archive test CA", 1,
                      {{NID_basic_constraints, "critical,CA:TRUE"},
                       {NID_key_usage, "critical,keyCertSign,cRLSign"},
                       {NID_subject_key_identifier, "hash"}},
                      nullptr, nullptr);
  if (!ca.ok()) return ca.status();
  absl::StatusOr<Cert> server = MakeCertificate(
      server_key.get(), "localhost", 2,
      {{NID_basic_constraints, "critical,CA:FALSE"},
       {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
       {NID_ext_key_usage, "serverAuth"},
       {NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"},
       {NID_authority_key_identifier, "keyid:always"}},
      ca->get(), ca_key.get());
  if (!server.ok()) return server.status();
  absl::StatusOr<Cert> client = MakeCertificate(
      client_key.get(), "pdk-archive-test-client", 3,
      {{NID_basic_constraints, "critical,CA:FALSE"},
       {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
       {NID_ext_key_usage, "clientAuth"},
       {NID_authority_key_identifier, "keyid:always"}},
      ca->get(), ca_key.get());
  if (!client.ok()) return client.status();

  TlsFiles files;
  files.ca_cert = (dir / "ca.pem").string();
  files.server_cert = (dir / "server.pem").string();
  files.server_key = (dir / "server-key.pem").string();
  files.client_cert = (dir / "client.pem").string();
  files.client_key = (dir / "client-key.pem").string();
  if (absl::Status s = WriteCertAndKey(files.ca_cert, ca->get(), "", nullptr);
      !s.ok())
    return s;
  if (absl::Status s = WriteCertAndKey(files.server_cert, server->get(),
                                       files.server_key, server_key.get());
      !s.ok()) {
    return s;
  }
  if (absl::Status s = WriteCertAndKey(files.client_cert, client->get(),
                                       files.client_key, client_key.get());
      !s.ok()) {
    return s;
  }
  return files;
}

}  // namespace pdkarchive::testing
