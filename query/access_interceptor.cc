#include "query/access_interceptor.h"

#include <google/protobuf/util/json_util.h>

#include <string>
#include <string_view>
#include <utility>

#include "pdk/archive/v1/event_archive.pb.h"
#include "timeutil/time_util.h"

namespace pdkarchive::query {
namespace {

namespace pb = pdk::archive::v1;
using grpc::experimental::InterceptionHookPoints;

constexpr std::string_view kServicePrefix = "/pdk.archive.v1.EventArchive/";

enum class Method { kList, kGet, kCount, kExport, kWatch, kOther };

Method MethodOf(std::string_view name) {
  name.remove_prefix(kServicePrefix.size());
  if (name == "ListEvents") return Method::kList;
  if (name == "GetEvent") return Method::kGet;
  if (name == "CountEvents") return Method::kCount;
  if (name == "ExportEvents") return Method::kExport;
  if (name == "WatchEvents") return Method::kWatch;
  return Method::kOther;
}

// The request of a `method` call as JSON, at most kMaxFilterText bytes (cut
// on a UTF-8 character boundary).
std::string RequestText(Method method, const void* request) {
  const google::protobuf::Message* message = nullptr;
  switch (method) {
    case Method::kList:
      message = static_cast<const pb::ListEventsRequest*>(request);
      break;
    case Method::kGet:
      message = static_cast<const pb::GetEventRequest*>(request);
      break;
    case Method::kCount:
      message = static_cast<const pb::CountEventsRequest*>(request);
      break;
    case Method::kExport:
      message = static_cast<const pb::ExportEventsRequest*>(request);
      break;
    case Method::kWatch:
      message = static_cast<const pb::WatchEventsRequest*>(request);
      break;
    case Method::kOther:
      return "";
  }
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(*message, &text).ok()) return "";
  if (text.size() > kMaxFilterText) {
    size_t cut = kMaxFilterText;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text.resize(cut);
    text += "...";
  }
  return text;
}

// Rows one response message of a `method` call carries: events, or groups
// of a count; an export's CSV chunks count as bytes only.
int64_t RowsIn(Method method, const void* response) {
  switch (method) {
    case Method::kList:
      return static_cast<const pb::ListEventsResponse*>(response)->events_size();
    case Method::kCount:
      return static_cast<const pb::CountEventsResponse*>(response)->groups_size();
    case Method::kGet:
    case Method::kWatch:
      return 1;
    case Method::kExport:
    case Method::kOther:
      return 0;
  }
  return 0;
}

int64_t BytesIn(Method method, const void* response) {
  switch (method) {
    case Method::kList:
      return static_cast<int64_t>(
          static_cast<const pb::ListEventsResponse*>(response)->ByteSizeLong());
    case Method::kCount:
      return static_cast<int64_t>(
          static_cast<const pb::CountEventsResponse*>(response)->ByteSizeLong());
    case Method::kGet:
    case Method::kWatch:
      return static_cast<int64_t>(static_cast<const pb::Event*>(response)->ByteSizeLong());
    case Method::kExport:
      return static_cast<int64_t>(
          static_cast<const pb::ExportEventsResponse*>(response)->ByteSizeLong());
    case Method::kOther:
      return 0;
  }
  return 0;
}

class AccessInterceptor final : public grpc::experimental::Interceptor {
 public:
  AccessInterceptor(grpc::experimental::ServerRpcInfo* info, Method method, QueryAccess& access,
                    CallAdmissions& admissions)
      : context_(info->server_context()),
        method_(method),
        access_(access),
        admissions_(admissions) {
    record_.time_ms = timeutil::NowMs();
    record_.method = info->method();
    // A call that ends without sending a status was cancelled.
    record_.code = grpc::StatusCode::CANCELLED;
  }

  ~AccessInterceptor() override {
    admissions_.Forget(context_);
    access_.Log(std::move(record_));
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      Authenticate(*methods->GetRecvInitialMetadata());
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      if (const void* request = methods->GetRecvMessage()) {
        record_.filter = RequestText(method_, request);
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      if (const void* response = methods->GetSendMessage()) {
        record_.rows += RowsIn(method_, response);
        record_.bytes += BytesIn(method_, response);
      } else if (grpc::ByteBuffer* serialized = methods->GetSerializedSendMessage()) {
        record_.bytes += static_cast<int64_t>(serialized->Length());
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      record_.code = status.error_code();
      record_.message = status.error_message();
    }
    methods->Proceed();
  }

 private:
  void Authenticate(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
    record_.peer = context_->peer();
    std::string_view value;
    const std::string_view* authorization = nullptr;
    if (auto it = metadata.find("authorization"); it != metadata.end()) {
      value = std::string_view(it->second.data(), it->second.size());
      authorization = &value;
    }
    absl::StatusOr<std::string> token = access_.Authenticate(authorization);
    if (token.ok()) {
      record_.token = *std::move(token);
      admissions_.Decide(context_, grpc::Status::OK);
    } else {
      admissions_.Decide(context_,
                         grpc::Status(static_cast<grpc::StatusCode>(token.status().code()),
                                      std::string(token.status().message())));
    }
  }

  grpc::ServerContextBase* const context_;
  const Method method_;
  QueryAccess& access_;
  CallAdmissions& admissions_;
  store::AccessRecord record_;
};

}  // namespace

void CallAdmissions::Decide(const grpc::ServerContextBase* context, const grpc::Status& status) {
  std::lock_guard lock(mu_);
  decisions_[context] = status;
}

void CallAdmissions::Forget(const grpc::ServerContextBase* context) {
  std::lock_guard lock(mu_);
  decisions_.erase(context);
}

grpc::Status CallAdmissions::Check(const grpc::ServerContextBase* context) const {
  std::lock_guard lock(mu_);
  auto it = decisions_.find(context);
  if (it == decisions_.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, kUnauthenticatedMessage);
  }
  return it->second;
}

grpc::experimental::Interceptor* AccessInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  const std::string_view method = info->method() == nullptr ? "" : info->method();
  if (method.substr(0, kServicePrefix.size()) != kServicePrefix) return nullptr;
  return new AccessInterceptor(info, MethodOf(method), access_, admissions_);
}

}  // namespace pdkarchive::query
