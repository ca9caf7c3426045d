// How a client command reaches the server: the address, TLS (server
// verification with a CA file or the system roots, and a client certificate
// for mTLS), the bearer token, and what is said when a call fails.
#ifndef PDKARCHIVE_CLI_CLIENT_CHANNEL_H_
#define PDKARCHIVE_CLI_CLIENT_CHANNEL_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cli/flags.h"
#include "pdk/archive/v1/event_archive.grpc.pb.h"

namespace pdkarchive::cli {

// The connection flags of every client command. Targets of FlagSet.
struct ConnectionFlags {
  std::string server = "127.0.0.1:50051";
  bool tls = false;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string token_file;
  int64_t max_reply_mib = 256;

  void Declare(FlagSet& flags);
  // True when the connection uses TLS (--tls or --tls-ca).
  bool UsesTls() const { return tls || !tls_ca.empty(); }
};

// A channel to the server and the token its calls carry. Thread-compatible.
class ServerConnection {
 public:
  // Checks the flags and reads the files they name. The token is the
  // contents of --token-file, else $PDKARCHIVE_TOKEN, else none.
  // InvalidArgument for flags that do not go together or a bad value;
  // FailedPrecondition for a file that cannot be read or parsed. Connects
  // lazily: an unreachable server shows on the first call.
  static absl::StatusOr<std::unique_ptr<ServerConnection>> Open(
      const ConnectionFlags& flags);

  pdk::archive::v1::EventArchive::Stub& stub() { return *stub_; }

  // Adds `authorization: Bearer TOKEN` to `context` when there is a token.
  void Authorize(grpc::ClientContext& context) const;

 private:
  ServerConnection() = default;
  std::unique_ptr<pdk::archive::v1::EventArchive::Stub> stub_;
  std::string token_;
};

// Opens the connection, or prints why not (prefixed "pdk-archive
// `command`: ") and returns nullptr. A bad flag is exit status 2, an
// unreadable file 1: `*exit_code` says which.
std::unique_ptr<ServerConnection> ConnectOrSay(const char* command,
                                               const ConnectionFlags& flags,
                                               int* exit_code);

// True when the call failed because a reply was over this client's
// --max-reply-mib (gRPC reports that as RESOURCE_EXHAUSTED on the client).
bool ReplyOverClientLimit(const grpc::Status& status);

// Prints why a call to the server failed, with what to try, and returns the
// exit status (1).
int RpcFailed(const char* command, const ConnectionFlags& flags,
              const grpc::Status& status);

}  // namespace pdkarchive::cli

#endif  // PDKARCHIVE_CLI_CLIENT_CHANNEL_H_
