// pdk-store-ceiling: the store's ceiling. With --db URI, PostgreSQL's
// instead: the same rows through that engine's sink. Appends generated PDK door events
// straight through store::SqliteStore::AppendBatch, in batches of --batch
// rows, to a new archive with serve's settings (WAL, synchronous=FULL, the
// same migrations, a Checkpointer on its own thread and Maintain() after
// each batch, as serve's writer does), and reports durable rows/s. The rows are
// made by ingest::Normalize from the same generator pdk-load sends, so they
// have the same shape as ingested ones. It also times the per-event CPU work of
// ingest outside HTTP (signature check, normalization) on one thread.
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bench/bench_flags.h"
#include "bench/event_generator.h"
#include "ingest/normalizer.h"
#include "ingest/signature.h"
#include "store/archive.h"
#include "store/event.h"
#include "store/sqlite/checkpointer.h"
#include "store/sqlite/sqlite_store.h"

namespace pdkarchive::bench {
namespace {

// As store::GroupCommitWriter: nudge the checkpointer every this many rows.
constexpr size_t kRowsPerCheckpointNudge = 4096;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

uint64_t FileSize(const std::filesystem::path& path) {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<uint64_t>(size);
}

int Main(int argc, char** argv) {
  int64_t rows = 200000;
  int64_t batch = 1000;
  int64_t seed = 1;
  std::string occurred = "year";
  std::string dir;
  bool checkpointer = true;
  bool keep = false;
  std::string label;
  std::string whatif_sql;
  std::string db_uri;
  Flags flags("pdk-store-ceiling [--rows N] [--batch N] [--dir DIR] ...");
  flags.Int("rows", &rows, "rows to append");
  flags.Int("batch", &batch,
            "rows per AppendBatch call (one transaction, one fsync)");
  flags.Int("seed", &seed, "content seed, as pdk-load's");
  flags.String(
      "occurred", &occurred,
      "year: occurred spread over 2025; live: occurred = now (as pdk-load)");
  flags.String("dir", &dir,
               "where to create the archive (default: a new temp dir)");
  flags.Bool("checkpointer", &checkpointer,
             "run WAL checkpoints on their own thread, as serve does");
  flags.Bool("keep", &keep, "keep the archive afterwards");
  flags.String("label", &label, "a name echoed in the RESULT line");
  flags.String("whatif-sql", &whatif_sql,
               "SQL run on the new archive before appending, e.g. "
               "'DROP INDEX events_by_panel' to measure what an index costs");
  flags.String("db", &db_uri,
               "append to this archive instead (a PostgreSQL URI of an empty database), "
               "through store::OpenArchive as serve does; --dir, --checkpointer and "
               "--whatif-sql are then ignored");
  flags.Parse(argc, argv);
  if (rows <= 0 || batch <= 0 || (occurred != "year" && occurred != "live")) {
    std::cerr << "pdk-store-ceiling: --rows and --batch must be positive, "
                 "--occurred year or live\n";
    return 2;
  }
  bool made_dir = false;
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
        "/pdk-store-ceiling.XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("pdk-store-ceiling: mkdtemp");
      return 1;
    }
    dir = pattern;
    made_dir = true;
  }
  const std::filesystem::path db_path =
      std::filesystem::path(dir) / "ceiling.db";
  for (const char* suffix : {"", "-wal", "-shm"}) {
    if (std::filesystem::exists(db_path.string() + suffix)) {
      std::cerr << "pdk-store-ceiling: " << db_path
                << " exists; the ceiling is "
                << "measured on an empty archive\n";
      return 1;
    }
  }

  // The same events pdk-load would send, with their signatures.
  constexpr char kSecret[] = "store-ceiling-secret";
  GeneratorOptions options;
  options.seed = static_cast<uint64_t>(seed);
  options.live_times = occurred == "live";
  options.id_nonce = RandomNonce();
  EventGenerator generator(options);
  std::vector<std::string> bodies;
  std::vector<std::string> signatures;
  bodies.reserve(static_cast<size_t>(rows));
  signatures.reserve(static_cast<size_t>(rows));
  size_t body_bytes = 0;
  for (int64_t i = 0; i < rows; ++i) {
    bodies.push_back(generator.Next());
    signatures.push_back(SignatureHex(kSecret, bodies.back()));
    body_bytes += bodies.back().size();
  }

  // Per-event CPU of the request path outside HTTP and the store.
  auto start = std::chrono::steady_clock::now();
  size_t verified = 0;
  for (size_t i = 0; i < bodies.size(); ++i) {
    if (ingest::VerifySignature(kSecret, bodies[i], signatures[i])) ++verified;
  }
  const double verify_us =
      SecondsSince(start) * 1e6 / static_cast<double>(rows);
  if (verified != bodies.size()) {
    std::cerr << "pdk-store-ceiling: the server's signature check refused "
              << bodies.size() - verified << " generated events\n";
    return 1;
  }
  const int64_t receive_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count();
  std::vector<store::EventRow> event_rows;
  event_rows.reserve(bodies.size());
  start = std::chrono::steady_clock::now();
  for (const std::string& body : bodies) {
    absl::StatusOr<ingest::Normalized> n =
        ingest::Normalize(body, receive_ms, "default");
    if (!n.ok()) {
      std::cerr << "pdk-store-ceiling: Normalize refused a generated event: "
                << n.status().message() << "\n";
      return 1;
    }
    event_rows.push_back(std::move(n->row));
  }
  const double normalize_us =
      SecondsSince(start) * 1e6 / static_cast<double>(rows);

  // The PostgreSQL ceiling (--db): the engine's own sink, opened as serve
  // opens it.
  std::unique_ptr<store::Archive> archive;
  if (!db_uri.empty()) {
    absl::StatusOr<std::unique_ptr<store::Archive>> opened = store::OpenArchive(db_uri);
    if (!opened.ok()) {
      std::cerr << "pdk-store-ceiling: " << opened.status().message() << "\n";
      return 1;
    }
    archive = *std::move(opened);
    checkpointer = false;
    whatif_sql.clear();
  }
  absl::StatusOr<std::unique_ptr<store::SqliteStore>> store =
      archive != nullptr ? absl::StatusOr<std::unique_ptr<store::SqliteStore>>(nullptr)
                         : store::SqliteStore::Open(db_path.string());
  if (!store.ok()) {
    std::cerr << "pdk-store-ceiling: " << store.status().message() << "\n";
    return 1;
  }
  if (!whatif_sql.empty()) {
    try {
      SQLite::Database db(db_path.string(), SQLite::OPEN_READWRITE);
      db.exec(whatif_sql);
    } catch (const SQLite::Exception& e) {
      std::cerr << "pdk-store-ceiling: --whatif-sql: " << e.what() << "\n";
      return 1;
    }
  }
  std::unique_ptr<store::Checkpointer> checkpoints;
  if (checkpointer) {
    absl::StatusOr<std::unique_ptr<store::Checkpointer>> c =
        store::Checkpointer::Start(db_path.string(), std::chrono::milliseconds(250));
    if (!c.ok()) {
      std::cerr << "pdk-store-ceiling: " << c.status().message() << "\n";
      return 1;
    }
    checkpoints = *std::move(c);
    (*store)->set_checkpointer(checkpoints.get());
  }
  store::BatchSink& sink = archive != nullptr ? archive->sink() : **store;

  const size_t batch_size = static_cast<size_t>(batch);
  std::vector<double> batch_ms;
  size_t stored = 0;
  size_t since_nudge = 0;
  const std::span<const store::EventRow> all(event_rows);
  start = std::chrono::steady_clock::now();
  for (size_t offset = 0; offset < all.size(); offset += batch_size) {
    const std::span<const store::EventRow> part =
        all.subspan(offset, std::min(batch_size, all.size() - offset));
    const auto batch_start = std::chrono::steady_clock::now();
    absl::StatusOr<std::vector<store::AppendResult>> results =
        sink.AppendBatch(part);
    if (!results.ok()) {
      std::cerr << "pdk-store-ceiling: AppendBatch: "
                << results.status().message() << "\n";
      return 1;
    }
    // As store::GroupCommitWriter does after each batch (WAL housekeeping),
    // timed with the batch because the writer waits for it too.
    sink.Maintain(store::BatchSink::Load::kBacklog);
    batch_ms.push_back(SecondsSince(batch_start) * 1e3);
    for (const store::AppendResult& r : *results) stored += r.duplicate ? 0 : 1;
    since_nudge += part.size();
    if (checkpoints != nullptr && since_nudge >= kRowsPerCheckpointNudge) {
      checkpoints->Nudge();
      since_nudge = 0;
    }
  }
  const double append_s = SecondsSince(start);
  // The rate falls as the archive grows (each batch touches more distinct
  // index pages): report it by quarter of the run.
  std::vector<double> quarter_rates;
  for (size_t q = 0; q < 4; ++q) {
    const size_t first = batch_ms.size() * q / 4;
    const size_t last = batch_ms.size() * (q + 1) / 4;
    double ms = 0;
    for (size_t i = first; i < last; ++i) ms += batch_ms[i];
    const size_t quarter_rows =
        std::min(last * batch_size, event_rows.size()) - first * batch_size;
    if (ms > 0)
      quarter_rates.push_back(static_cast<double>(quarter_rows) * 1e3 / ms);
  }
  const uint64_t db_bytes = FileSize(db_path);
  const uint64_t wal_bytes = FileSize(db_path.string() + "-wal");
  checkpoints.reset();
  store->reset();
  archive.reset();
  if (stored != event_rows.size()) {
    std::cerr << "pdk-store-ceiling: " << event_rows.size() - stored
              << " generated events were found to be duplicates\n";
    return 1;
  }

  std::sort(batch_ms.begin(), batch_ms.end());
  auto pct = [&batch_ms](double p) {
    const size_t rank =
        static_cast<size_t>(p / 100.0 * static_cast<double>(batch_ms.size()));
    return batch_ms[std::min(rank, batch_ms.size() - 1)];
  };
  const double rows_per_s = static_cast<double>(rows) / append_s;
  std::printf("pdk-store-ceiling: %" PRId64 " rows in batches of %" PRId64
              " on an empty archive (%s), occurred %s, checkpointer %s\n",
              rows, batch, db_uri.empty() ? db_path.c_str() : "PostgreSQL", occurred.c_str(),
              checkpointer ? "on" : "off");
  std::printf("rows/s       %.0f (%.2f s appending, %zu transactions)\n",
              rows_per_s, append_s, batch_ms.size());
  std::printf("by quarter  ");
  for (double r : quarter_rates) std::printf(" %.0f", r);
  std::printf(" rows/s (inside the timed calls)\n");
  std::printf("batch ms     p50 %.2f  p99 %.2f  max %.2f\n", pct(50), pct(99),
              pct(100));
  std::printf(
      "per event    verify %.2f us, normalize %.2f us (one thread); %.0f bytes "
      "of "
      "JSON\n",
      verify_us, normalize_us,
      static_cast<double>(body_bytes) / static_cast<double>(rows));
  std::printf("files        db %.1f MB, wal %.1f MB at the end\n",
              static_cast<double>(db_bytes) / 1e6,
              static_cast<double>(wal_bytes) / 1e6);
  std::string quarters;
  for (double r : quarter_rates) {
    if (!quarters.empty()) quarters += ',';
    quarters += std::to_string(static_cast<int64_t>(r));
  }
  std::printf(
      "RESULT label=%s rows=%" PRId64 " batch=%" PRId64
      " rows_per_s=%.1f batch_ms_p50=%.3f batch_ms_p99=%.3f verify_us=%.3f"
      " normalize_us=%.3f wal_mb=%.1f quarters=%s\n",
      label.empty() ? "-" : label.c_str(), rows, batch, rows_per_s, pct(50),
      pct(99), verify_us, normalize_us, static_cast<double>(wal_bytes) / 1e6,
      quarters.c_str());

  if (!keep) {
    std::error_code ec;
    if (made_dir) {
      std::filesystem::remove_all(dir, ec);
    } else {
      for (const char* suffix : {"", "-wal", "-shm"}) {
        std::filesystem::remove(db_path.string() + suffix, ec);
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace pdkarchive::bench

int main(int argc, char** argv) { return pdkarchive::bench::Main(argc, argv); }
