#include "store/postgres/pg_access_store.h"

#include <mutex>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace pdkarchive::store::pg {
namespace {

constexpr char kInsertToken[] =
    "INSERT INTO access_tokens (name, hash, created_ms) VALUES ($1, $2, $3)";
constexpr char kSelectTokens[] =
    "SELECT name, created_ms, last_used_ms, revoked_ms FROM access_tokens "
    "ORDER BY name, id";
constexpr char kRevokeToken[] =
    "UPDATE access_tokens SET revoked_ms = $1 WHERE name = $2 AND revoked_ms "
    "IS NULL "
    "RETURNING id";
constexpr char kSelectLiveTokens[] =
    "SELECT name, encode(hash, 'hex') FROM access_tokens WHERE revoked_ms IS "
    "NULL";
constexpr char kTouchToken[] =
    "UPDATE access_tokens SET last_used_ms = GREATEST(COALESCE(last_used_ms, "
    "0), $1) "
    "WHERE name = $2 AND revoked_ms IS NULL";
constexpr char kHasLiveToken[] =
    "SELECT EXISTS (SELECT 1 FROM access_tokens WHERE revoked_ms IS NULL)::int";
constexpr char kHasAnyToken[] = "SELECT EXISTS (SELECT 1 FROM access_tokens)::int";
constexpr char kInsertAccess[] =
    "INSERT INTO access_log (time_ms, token, peer, method, filter, "
    "rows_returned, "
    "bytes_returned, status_code, status_message) VALUES ($1, $2, $3, $4, $5, "
    "$6, $7, $8, $9)";
constexpr char kSelectAccess[] =
    "SELECT time_ms, token, peer, method, filter, rows_returned, "
    "bytes_returned, "
    "status_code, status_message FROM access_log "
    "WHERE ($1::bigint IS NULL OR time_ms >= $1::bigint) "
    "AND ($2::bigint IS NULL OR time_ms < $2::bigint) "
    "AND ($3::text IS NULL OR token = $3::text) ORDER BY time_ms, id LIMIT $4";

class PgAccessStore final : public AccessStore {
 public:
  explicit PgAccessStore(ConnectOptions connect) : connect_(std::move(connect)) {}

  absl::Status CreateToken(const std::string& name, const std::string& hash,
                           int64_t created_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<Result> r = Query(kInsertToken, Params().Text(name).Bytes(hash).Int(created_ms));
    if (r.status().code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(absl::StrCat("a token named ", name, " exists"));
    }
    return r.status();
  }

  absl::StatusOr<std::vector<TokenInfo>> ListTokens() override {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<Result> r = Query(kSelectTokens);
    if (!r.ok()) return r.status();
    std::vector<TokenInfo> tokens;
    for (int i = 0; i < r->rows(); ++i) {
      tokens.push_back(TokenInfo{std::string(r->bytes(i, 0)), r->int64(i, 1),
                                 r->optional_int64(i, 2), r->optional_int64(i, 3)});
    }
    return tokens;
  }

  absl::Status RevokeToken(const std::string& name, int64_t revoked_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<Result> r = Query(kRevokeToken, Params().Int(revoked_ms).Text(name));
    if (!r.ok()) return r.status();
    if (r->rows() == 0) {
      return absl::NotFoundError(absl::StrCat("no live token named ", name));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<LiveToken>> LiveTokens() override {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<Result> r = Query(kSelectLiveTokens);
    if (!r.ok()) return r.status();
    std::vector<LiveToken> tokens;
    for (int i = 0; i < r->rows(); ++i) {
      tokens.push_back(LiveToken{std::string(r->bytes(i, 0)),
                                 absl::HexStringToBytes(std::string(r->bytes(i, 1)))});
    }
    return tokens;
  }

  absl::Status RecordTokenUse(std::span<const std::pair<std::string, int64_t>> uses) override {
    if (uses.empty()) return absl::OkStatus();
    std::lock_guard<std::mutex> lock(mu_);
    return InTransaction([&]() -> absl::Status {
      for (const auto& [name, time_ms] : uses) {
        absl::StatusOr<Result> r = conn_->Query(kTouchToken, Params().Int(time_ms).Text(name));
        if (!r.ok()) return r.status();
      }
      return absl::OkStatus();
    });
  }

  absl::StatusOr<bool> HasLiveToken() override {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<Result> r = Query(kHasLiveToken);
    if (!r.ok()) return r.status();
    return r->rows() == 1 && r->int64(0, 0) != 0;
  }

  absl::StatusOr<bool> HasAnyToken() override {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<Result> r = Query(kHasAnyToken);
    if (!r.ok()) return r.status();
    return r->rows() == 1 && r->int64(0, 0) != 0;
  }

  absl::Status AppendAccess(std::span<const AccessRecord> records) override {
    if (records.empty()) return absl::OkStatus();
    std::lock_guard<std::mutex> lock(mu_);
    return InTransaction([&]() -> absl::Status {
      for (const AccessRecord& rec : records) {
        absl::StatusOr<Result> r = conn_->Query(kInsertAccess, Params()
                                                                   .Int(rec.time_ms)
                                                                   .Text(rec.token)
                                                                   .Text(rec.peer)
                                                                   .Text(rec.method)
                                                                   .Text(rec.filter)
                                                                   .Int(rec.rows)
                                                                   .Int(rec.bytes)
                                                                   .Int(rec.code)
                                                                   .Text(rec.message));
        if (!r.ok()) return r.status();
      }
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::vector<AccessRecord>> ListAccess(const AccessQuery& query) override {
    std::lock_guard<std::mutex> lock(mu_);
    Params params;
    params.OptionalInt(query.from_ms).OptionalInt(query.to_ms);
    if (query.token) {
      params.Text(*query.token);
    } else {
      params.Null();
    }
    params.Int(query.limit);
    absl::StatusOr<Result> r = Query(kSelectAccess, params);
    if (!r.ok()) return r.status();
    std::vector<AccessRecord> records;
    for (int i = 0; i < r->rows(); ++i) {
      AccessRecord& rec = records.emplace_back();
      rec.time_ms = r->int64(i, 0);
      rec.token = std::string(r->bytes(i, 1));
      rec.peer = std::string(r->bytes(i, 2));
      rec.method = std::string(r->bytes(i, 3));
      rec.filter = std::string(r->bytes(i, 4));
      rec.rows = r->int64(i, 5);
      rec.bytes = r->int64(i, 6);
      rec.code = static_cast<int>(r->int64(i, 7));
      rec.message = std::string(r->bytes(i, 8));
    }
    return records;
  }

  absl::Status Connect() {
    if (conn_ != nullptr && conn_->healthy()) return absl::OkStatus();
    conn_.reset();
    absl::StatusOr<std::unique_ptr<Connection>> conn = Connection::Open(connect_);
    if (!conn.ok()) return conn.status();
    conn_ = *std::move(conn);
    return absl::OkStatus();
  }

 private:
  // One statement on a (re)connected connection. Call with mu_ held.
  absl::StatusOr<Result> Query(const char* sql, const Params& params = {}) {
    if (absl::Status s = Connect(); !s.ok()) return s;
    return conn_->Query(sql, params);
  }

  // Runs `body` between BEGIN and COMMIT, rolling back when it fails. Call
  // with mu_ held.
  template <typename Body>
  absl::Status InTransaction(Body&& body) {
    if (absl::Status s = Connect(); !s.ok()) return s;
    if (absl::Status s = conn_->Exec("BEGIN"); !s.ok()) return s;
    absl::Status s = body();
    if (s.ok()) s = conn_->Exec("COMMIT");
    if (!s.ok() && conn_->healthy()) (void)conn_->Exec("ROLLBACK");
    return s;
  }

  const ConnectOptions connect_;
  std::mutex mu_;
  std::unique_ptr<Connection> conn_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<AccessStore>> OpenAccessStore(const ConnectOptions& connect) {
  auto store = std::make_unique<PgAccessStore>(connect);
  if (absl::Status s = store->Connect(); !s.ok()) return s;
  return std::unique_ptr<AccessStore>(std::move(store));
}

}  // namespace pdkarchive::store::pg
