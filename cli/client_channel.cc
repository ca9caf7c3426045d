#include "cli/client_channel.h"

#include <climits>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/grpc_security.h"

namespace pdkarchive::cli {
namespace {

namespace v1 = ::pdk::archive::v1;

constexpr int64_t kMaxReplyMibLimit = INT_MAX / (1024 * 1024);
constexpr char kTokenVariable[] = "PDKARCHIVE_TOKEN";

// The whole of file `path` (named by --`flag`); FailedPrecondition naming
// both when it cannot be read.
absl::StatusOr<std::string> ReadWholeFile(const char* flag,
                                          const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--", flag, ": cannot read ", path));
  }
  return text.str();
}

// A token as it may travel in an HTTP/2 header value: printable ASCII,
// surrounding white space (the file's newline) dropped.
absl::StatusOr<std::string> CheckToken(const std::string& where,
                                       std::string_view raw) {
  const std::string token(
      absl::StripAsciiWhitespace(absl::string_view(raw.data(), raw.size())));
  if (token.empty())
    return absl::InvalidArgumentError(absl::StrCat(where, " holds no token"));
  for (char c : token) {
    if (c < 0x21 || c > 0x7E) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, " holds a token with a character other than printable ASCII"));
    }
  }
  return token;
}

}  // namespace

void ConnectionFlags::Declare(FlagSet& flags) {
  flags.String("server", "HOST:PORT", &server, "the pdk-archive gRPC address");
  flags.Bool(
      "tls", &tls,
      "use TLS, verifying the server with the default CA certificates (gRPC's\n"
      "bundle, else the system's; $GRPC_DEFAULT_SSL_ROOTS_FILE_PATH "
      "overrides)");
  flags.String(
      "tls-ca", "FILE", &tls_ca,
      "use TLS, verifying the server with the CA certificates (PEM) in FILE");
  flags.String(
      "tls-cert", "FILE", &tls_cert,
      "this client's certificate (PEM), for a server that requires one (mTLS)");
  flags.String("tls-key", "FILE", &tls_key,
               "the private key (PEM) of --tls-cert");
  flags.String(
      "token-file", "FILE", &token_file,
      "send the bearer token in FILE (default: $PDKARCHIVE_TOKEN, if set)");
  flags.Int("max-reply-mib", "MIB", &max_reply_mib,
            "the largest server reply this client accepts, in MiB (1-2047)");
}

absl::StatusOr<std::unique_ptr<ServerConnection>> ServerConnection::Open(
    const ConnectionFlags& f) {
  if (f.max_reply_mib < 1 || f.max_reply_mib > kMaxReplyMibLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-reply-mib wants 1 to ", kMaxReplyMibLimit, ", got ",
                     f.max_reply_mib));
  }
  if (f.tls_cert.empty() != f.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (!f.tls_cert.empty() && !f.UsesTls()) {
    return absl::InvalidArgumentError(
        "--tls-cert needs TLS: add --tls-ca FILE (or --tls for the system's "
        "CAs)");
  }
  auto connection = std::unique_ptr<ServerConnection>(new ServerConnection());
  if (!f.token_file.empty()) {
    absl::StatusOr<std::string> text =
        ReadWholeFile("token-file", f.token_file);
    if (!text.ok()) return text.status();
    absl::StatusOr<std::string> token =
        CheckToken(absl::StrCat("--token-file ", f.token_file), *text);
    if (!token.ok())
      return absl::FailedPreconditionError(token.status().message());
    connection->token_ = *std::move(token);
  } else if (const char* env = std::getenv(kTokenVariable);
             env != nullptr && *env != '\0') {
    absl::StatusOr<std::string> token = CheckToken(kTokenVariable, env);
    if (!token.ok()) return token.status();
    connection->token_ = *std::move(token);
  }

  if (!connection->token_.empty() && !f.UsesTls() &&
      !IsLocalAddress(f.server)) {
    std::cerr << "pdk-archive: WARNING: sending the token to " << f.server
              << " without TLS: anyone on the way can read it (add --tls-ca "
                 "FILE or --tls)\n";
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::InsecureChannelCredentials();
  if (f.UsesTls()) {
    grpc::SslCredentialsOptions ssl;  // empty roots: gRPC's default roots
    if (!f.tls_ca.empty()) {
      absl::StatusOr<std::string> roots = ReadWholeFile("tls-ca", f.tls_ca);
      if (!roots.ok()) return roots.status();
      if (!absl::StrContains(*roots, "-----BEGIN CERTIFICATE-----")) {
        return absl::FailedPreconditionError(
            absl::StrCat("--tls-ca ", f.tls_ca, " holds no PEM certificate"));
      }
      ssl.pem_root_certs = *std::move(roots);
    }
    if (!f.tls_cert.empty()) {
      absl::StatusOr<std::string> cert = ReadWholeFile("tls-cert", f.tls_cert);
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadWholeFile("tls-key", f.tls_key);
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *std::move(cert);
      ssl.pem_private_key = *std::move(key);
    }
    credentials = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(
      static_cast<int>(f.max_reply_mib * 1024 * 1024));
  connection->stub_ = v1::EventArchive::NewStub(
      grpc::CreateCustomChannel(f.server, credentials, arguments));
  return connection;
}

void ServerConnection::Authorize(grpc::ClientContext& context) const {
  if (!token_.empty())
    context.AddMetadata("authorization", absl::StrCat("Bearer ", token_));
}

std::unique_ptr<ServerConnection> ConnectOrSay(const char* command,
                                               const ConnectionFlags& flags,
                                               int* exit_code) {
  absl::StatusOr<std::unique_ptr<ServerConnection>> connection =
      ServerConnection::Open(flags);
  if (connection.ok()) return *std::move(connection);
  std::cerr << "pdk-archive " << command << ": "
            << connection.status().message() << "\n";
  *exit_code =
      connection.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  return nullptr;
}

bool ReplyOverClientLimit(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
         absl::StrContains(status.error_message(),
                           "Received message larger than max");
}

int RpcFailed(const char* command, const ConnectionFlags& f,
              const grpc::Status& status) {
  std::cerr << "pdk-archive " << command << ": " << f.server << ": ";
  if (ReplyOverClientLimit(status)) {
    std::cerr
        << "the server's reply is larger than this client accepts "
           "(--max-reply-mib "
        << f.max_reply_mib << "; " << status.error_message()
        << "): narrow the filter (--from/--to, --topic, --door, --person, ...)"
        << (std::string_view(command) == "count"
                ? " or group --by fewer dimensions"
                : "")
        << ", or raise --max-reply-mib\n";
    return 1;
  }
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      std::cerr << "server unavailable: " << status.error_message();
      if (!f.UsesTls()) {
        std::cerr << " (if the server uses TLS, add --tls-ca FILE or --tls)";
      } else if (f.tls_cert.empty()) {
        std::cerr << " (if the server requires client certificates, add "
                     "--tls-cert and "
                     "--tls-key)";
      }
      break;
    case grpc::StatusCode::UNAUTHENTICATED:
      std::cerr << "not authenticated: " << status.error_message()
                << " (give a valid token with --token-file FILE or "
                << kTokenVariable << ")";
      break;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      std::cerr << status.error_message()
                << " (narrow the filter: --from/--to, --topic, --door, "
                   "--person, ...)";
      break;
    default:
      std::cerr << status.error_message();
  }
  std::cerr << "\n";
  return 1;
}

}  // namespace pdkarchive::cli
