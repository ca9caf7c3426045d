// The gRPC side of query access: a server interceptor that, for every call
// of pdk.archive.v1.EventArchive (health checking and reflection are left
// alone), authenticates its bearer token with QueryAccess before the handler
// runs and, when the call ends, queues its access record (time, token name,
// peer, method, the request as JSON, rows and bytes sent, status).
//
// gRPC 1.51's server interceptors cannot end a call themselves (there is no
// server-side Hijack), so the interceptor decides and the service enforces:
// it files its decision in CallAdmissions under the call's ServerContext,
// and every EventArchiveService handler starts by asking for it (an unknown
// call is refused, so a missing interceptor fails closed).
#ifndef PDKARCHIVE_QUERY_ACCESS_INTERCEPTOR_H_
#define PDKARCHIVE_QUERY_ACCESS_INTERCEPTOR_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <mutex>
#include <unordered_map>

#include "query/query_access.h"

namespace pdkarchive::query {

// The interceptor's decision for each call in progress. Thread-safe.
class CallAdmissions {
 public:
  // Files `status` (OK = admitted) for the call on `context`.
  void Decide(const grpc::ServerContextBase* context, const grpc::Status& status);
  // Forgets the call on `context` (it has ended).
  void Forget(const grpc::ServerContextBase* context);
  // The decision for the call on `context`: OK when admitted; the refusal;
  // UNAUTHENTICATED when no decision was filed.
  grpc::Status Check(const grpc::ServerContextBase* context) const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<const grpc::ServerContextBase*, grpc::Status> decisions_;
};

// Makes one AccessInterceptor per EventArchive call. `access` and
// `admissions` must outlive every call (the grpc::Server owns the factory).
class AccessInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  AccessInterceptorFactory(QueryAccess& access, CallAdmissions& admissions)
      : access_(access), admissions_(admissions) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  QueryAccess& access_;
  CallAdmissions& admissions_;
};

// The longest request text an access record keeps; longer is cut, marked
// with "...".
inline constexpr size_t kMaxFilterText = 2048;

}  // namespace pdkarchive::query

#endif  // PDKARCHIVE_QUERY_ACCESS_INTERCEPTOR_H_
