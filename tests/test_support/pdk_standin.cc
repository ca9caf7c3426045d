#include "tests/test_support/pdk_standin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace pdkarchive::testing {
namespace {

std::string Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 429:
      return "Too Many Requests";
    default:
      return "Status";
  }
}

std::string Message(const std::string& text) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("message");
  w.String(text.c_str());
  w.EndObject();
  return buffer.GetString();
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()),
             static_cast<int>(raw.size()));
  return absl::BytesToHexString(raw);
}

// PDK's documented create/update rules; "" when `doc` passes.
std::string RuleBroken(const rapidjson::Document& doc) {
  if (!doc.IsObject()) return "body must be a JSON object";
  auto name = doc.FindMember("name");
  if (name == doc.MemberEnd() || !name->value.IsString() ||
      name->value.GetStringLength() == 0)
    return "name is required";
  if (name->value.GetStringLength() > 70)
    return "name must be at most 70 characters";
  auto url = doc.FindMember("url");
  if (url == doc.MemberEnd() || !url->value.IsString() ||
      !absl::StartsWith(url->value.GetString(), "https://"))
    return "url must use the https protocol";
  auto events = doc.FindMember("events");
  if (events == doc.MemberEnd() || !events->value.IsArray() ||
      events->value.Empty())
    return "events must be a non-empty array";
  auto secret = doc.FindMember("secret");
  if (secret != doc.MemberEnd() && secret->value.IsString() &&
      secret->value.GetStringLength() > 255)
    return "secret must be at most 255 characters";
  return "";
}

}  // namespace

absl::StatusOr<std::unique_ptr<PdkStandin>> PdkStandin::Start(
    std::string org, std::string client_id, std::string client_secret) {
  std::unique_ptr<PdkStandin> s(new PdkStandin());
  s->org_ = std::move(org);
  s->client_id_ = std::move(client_id);
  s->client_secret_ = std::move(client_secret);
  s->listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->listen_fd_ < 0) return absl::InternalError("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) !=
          0 ||
      listen(s->listen_fd_, 16) != 0) {
    return absl::InternalError("bind/listen failed");
  }
  socklen_t len = sizeof addr;
  getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  s->port_ = ntohs(addr.sin_port);
  s->thread_ = std::thread([p = s.get()] { p->Serve(); });
  return s;
}

PdkStandin::~PdkStandin() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
}

std::string PdkStandin::url() const {
  return absl::StrCat("http://127.0.0.1:", port_);
}

void PdkStandin::Throttle(int n, int retry_after_seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  throttle_n_ = n;
  throttle_seconds_ = retry_after_seconds;
  throttle_with_reset_ = false;
}

void PdkStandin::ThrottleUntilReset(int n, int seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  throttle_n_ = n;
  throttle_seconds_ = seconds;
  throttle_with_reset_ = true;
}

void PdkStandin::RevokeTokens() {
  std::lock_guard<std::mutex> lock(mu_);
  revoked_.insert(revoked_.end(), tokens_.begin(), tokens_.end());
}

void PdkStandin::Refuse(int n, int status, std::string body) {
  std::lock_guard<std::mutex> lock(mu_);
  refuse_n_ = n;
  refuse_status_ = status;
  refuse_body_ = std::move(body);
}

bool PdkStandin::SetOdometer(const std::string& id, int64_t odometer) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = objects_.find(id);
  if (it == objects_.end()) return false;
  it->second.odometer = odometer;
  return true;
}

std::vector<PdkStandin::Request> PdkStandin::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

void PdkStandin::ClearRequests() {
  std::lock_guard<std::mutex> lock(mu_);
  requests_.clear();
}

std::vector<std::string> PdkStandin::tokens() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tokens_;
}

std::optional<std::string> PdkStandin::Object(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = objects_.find(id);
  if (it == objects_.end()) return std::nullopt;
  return Render(id, it->second);
}

std::optional<int> PdkStandin::ApiOf(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = objects_.find(id);
  if (it == objects_.end()) return std::nullopt;
  return it->second.api;
}

std::vector<std::string> PdkStandin::Ids() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> ids;
  for (const auto& [id, stored] : objects_) ids.push_back(id);
  return ids;
}

void PdkStandin::Serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    HandleConnection(fd);
    close(fd);
  }
}

void PdkStandin::HandleConnection(int fd) {
  std::string data;
  char buf[8192];
  size_t header_end = std::string::npos;
  size_t content_length = 0;
  auto read_some = [&]() {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return false;
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    data.append(buf, static_cast<size_t>(n));
    return true;
  };
  while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
    if (!read_some()) return;
  }
  Request request;
  std::string content_type;
  std::vector<std::string> lines =
      absl::StrSplit(data.substr(0, header_end), "\r\n");
  std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
  if (first.size() < 2) return;
  request.method = first[0];
  request.path = first[1];
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    const std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    const std::string value(
        absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    if (name == "content-length")
      (void)absl::SimpleAtoi(value, &content_length);
    if (name == "authorization") request.authorization = value;
    if (name == "content-type") content_type = value;
  }
  while (data.size() < header_end + 4 + content_length) {
    if (!read_some()) return;
  }
  request.body = data.substr(header_end + 4, content_length);
  {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(request);
  }
  const Response response = Handle(request, content_type);
  std::string out = absl::StrCat("HTTP/1.1 ", response.status, " ",
                                 Reason(response.status), "\r\n");
  if (!response.body.empty())
    absl::StrAppend(&out, "Content-Type: application/json\r\n");
  if (!response.retry_after.empty())
    absl::StrAppend(&out, "Retry-After: ", response.retry_after, "\r\n");
  if (!response.rate_limit_reset.empty()) {
    absl::StrAppend(&out, "X-RateLimit-Reset: ", response.rate_limit_reset,
                    "\r\n");
  }
  absl::StrAppend(&out, "Content-Length: ", response.body.size(),
                  "\r\nConnection: close\r\n\r\n", response.body);
  size_t sent = 0;
  while (sent < out.size()) {
    const ssize_t n = write(fd, out.data() + sent, out.size() - sent);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

PdkStandin::Response PdkStandin::Handle(const Request& request,
                                        const std::string& content_type) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (throttle_n_ > 0) {
      --throttle_n_;
      if (throttle_with_reset_) {
        return {429, Message("rate limit exceeded"), "",
                absl::StrCat(std::time(nullptr) + throttle_seconds_)};
      }
      return {429, Message("rate limit exceeded"),
              absl::StrCat(throttle_seconds_), ""};
    }
  }
  if (request.path == "/oauth2/token") {
    if (request.method != "POST")
      return {405, Message("method not allowed"), ""};
    const std::string want =
        "Basic " + absl::Base64Escape(client_id_ + ":" + client_secret_);
    if (request.authorization != want)
      return {401, Message("invalid client credentials"), ""};
    if (!absl::StartsWith(content_type, "application/x-www-form-urlencoded") ||
        request.body != "grant_type=client_credentials")
      return {400, Message("unsupported grant_type"), ""};
    const std::string token = "tok-" + RandomHex(24);
    std::lock_guard<std::mutex> lock(mu_);
    tokens_.push_back(token);
    return {200,
            absl::StrCat(R"({"id_token":")", token,
                         R"(","token_type":"Bearer","expires_in":3600})"),
            ""};
  }
  // /api/ous/{org}/hooks[/{id}] or
  // /api/organizations/{org}/subscriptions[/{id}]
  std::vector<std::string> parts = absl::StrSplit(request.path, '/');
  // parts: "", "api", kind, org, collection[, id]
  if (parts.size() < 5 || parts.size() > 6 || parts[1] != "api")
    return {404, Message("not found"), ""};
  int api = 0;
  if (parts[2] == "ous" && parts[4] == "hooks") api = 1;
  if (parts[2] == "organizations" && parts[4] == "subscriptions") api = 2;
  if (api == 0) return {404, Message("not found"), ""};
  {
    std::lock_guard<std::mutex> lock(mu_);
    bool known = false;
    for (const std::string& t : tokens_) {
      if (request.authorization == "Bearer " + t &&
          std::find(revoked_.begin(), revoked_.end(), t) == revoked_.end())
        known = true;
    }
    if (!known) return {401, Message("invalid or missing id_token"), ""};
    if (parts[3] != org_)
      return {403,
              Message("must have direct access to the specified organization"),
              ""};
    if (refuse_n_ > 0) {
      --refuse_n_;
      return {refuse_status_, refuse_body_, ""};
    }
  }
  return HandleApi(request, api, parts.size() == 6 ? parts[5] : "");
}

std::string PdkStandin::Render(const std::string& id,
                               const Stored& stored) const {
  rapidjson::Document doc;
  doc.Parse(stored.json.c_str());
  auto& a = doc.GetAllocator();
  doc.RemoveMember("id");
  doc.RemoveMember("odometer");
  doc.AddMember("id", rapidjson::Value(id.c_str(), a), a);
  doc.AddMember("odometer", rapidjson::Value(stored.odometer), a);
  if (!doc.HasMember("active")) doc.AddMember("active", true, a);
  if (!doc.HasMember("expiresAt"))
    doc.AddMember("expiresAt", rapidjson::Value(rapidjson::kNullType), a);
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  doc.Accept(w);
  return buffer.GetString();
}

PdkStandin::Response PdkStandin::HandleApi(const Request& request, int api,
                                           const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (id.empty()) {
    if (request.method == "GET") {
      std::string out = "[";
      for (const auto& [oid, stored] : objects_) {
        if (stored.api != api) continue;
        if (out.size() > 1) out += ",";
        out += Render(oid, stored);
      }
      return {200, out + "]", ""};
    }
    if (request.method != "POST")
      return {405, Message("method not allowed"), ""};
    rapidjson::Document doc;
    doc.Parse(request.body.c_str());
    if (doc.HasParseError()) return {400, Message("body is not JSON"), ""};
    if (std::string broken = RuleBroken(doc); !broken.empty())
      return {400, Message(broken), ""};
    char buf[32];
    std::snprintf(buf, sizeof buf, "644ff464%016llx",
                  static_cast<unsigned long long>(next_id_++));
    objects_[buf] = Stored{api, request.body, 0};
    return {201, absl::StrCat(R"({"id":")", buf, R"("})"), ""};
  }
  auto it = objects_.find(id);
  if (it == objects_.end() || it->second.api != api)
    return {404, Message("subscription not found"), ""};
  if (request.method == "GET") return {200, Render(id, it->second), ""};
  if (request.method == "DELETE") {
    objects_.erase(it);
    return {204, "", ""};
  }
  if (request.method == "PUT") {
    rapidjson::Document doc;
    doc.Parse(request.body.c_str());
    if (doc.HasParseError()) return {400, Message("body is not JSON"), ""};
    if (std::string broken = RuleBroken(doc); !broken.empty())
      return {400, Message(broken), ""};
    it->second.json = request.body;
    return {204, "", ""};
  }
  return {405, Message("method not allowed"), ""};
}

}  // namespace pdkarchive::testing
