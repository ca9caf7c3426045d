#include "cli/copy_command.h"

#include <unistd.h>

#include <chrono>
#include <future>
#include <iomanip>
#include <iostream>
#include <memory>

#include "cli/archive_flags.h"
#include "cli/flags.h"
#include "ingest/normalizer.h"
#include "store/archive.h"

namespace pdkarchive::cli {
namespace {

constexpr char kDescription[] =
    "Copies every event of the archive --from into the archive --to, keeping\n"
    "sequences, times, raw payloads and dedupe, so that --to answers every\n"
    "query, page token and redelivery as --from did. Either may be a SQLite\n"
    "file or a PostgreSQL URI. --to must be new or an earlier copy of --from:\n"
    "run again, copy resumes after the newest event --to holds (so it can\n"
    "also catch up with events --from received since). --from is only read\n"
    "and may be served while it is copied.";

// Whether `a` and `b` are the same stored event (as far as a copy keeps it).
bool SameEvent(const store::EventRow& a, const store::EventRow& b) {
  return a.sequence == b.sequence && a.topic == b.topic && a.event_id == b.event_id &&
         a.occur_time_ms == b.occur_time_ms && a.raw == b.raw;
}

}  // namespace

int RunCopy(const std::vector<std::string>& args) {
  ArchiveFlags from;
  ArchiveFlags to;
  from.db.clear();
  to.db.clear();
  int64_t batch_size = 5000;
  FlagSet flags("pdk-archive copy --from SRC --to DST [flags]", kDescription);
  AddArchiveFlags(flags, &from, "from", "the archive to copy");
  AddArchiveFlags(flags, &to, "to", "the archive to copy into");
  flags.Int("batch", "N", &batch_size, "events per transaction");
  std::vector<std::string> rest;
  if (absl::Status s = flags.Parse(args, &rest); !s.ok()) {
    std::cerr << "pdk-archive copy: " << s.message() << "\n\n" << flags.Help();
    return 2;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  if (!rest.empty() || from.db.empty() || to.db.empty() || batch_size <= 0 ||
      batch_size > 100000) {
    std::cerr << "pdk-archive copy: want --from, --to and a --batch of 1 to 100000\n\n"
              << flags.Help();
    return 2;
  }
  if (from.db == to.db) {
    std::cerr << "pdk-archive copy: --from and --to are the same archive\n";
    return 2;
  }

  store::EventReaderOptions reader_options;
  reader_options.max_connections = 1;
  store::ArchiveOptions from_options;
  if (from.password_file.has_value()) {
    absl::StatusOr<std::string> password =
        ReadSecretFile("from-password-file", *from.password_file);
    if (!password.ok()) {
      std::cerr << "pdk-archive copy: " << password.status().message() << "\n";
      return 1;
    }
    from_options.password = *std::move(password);
  }
  absl::StatusOr<std::unique_ptr<store::ArchiveReader>> source =
      store::OpenArchiveReader(from.db, reader_options, from_options);
  if (!source.ok()) {
    std::cerr << "pdk-archive copy: --from " << store::DisplayDb(from.db) << ": "
              << source.status().message() << "\n";
    return 1;
  }
  absl::StatusOr<std::unique_ptr<store::Archive>> destination =
      OpenArchiveFromFlags(to, {}, "to");
  if (!destination.ok()) {
    std::cerr << "pdk-archive copy: --to " << store::DisplayDb(to.db) << ": "
              << destination.status().message() << "\n";
    return 1;
  }
  absl::StatusOr<std::unique_ptr<store::ArchiveReader>> copied =
      (*destination)->OpenReader(reader_options);
  absl::StatusOr<int64_t> resume =
      copied.ok() ? (*copied)->MaxSequence() : absl::StatusOr<int64_t>(copied.status());
  absl::StatusOr<int64_t> newest = (*source)->MaxSequence();
  if (!resume.ok() || !newest.ok()) {
    std::cerr << "pdk-archive copy: "
              << (!resume.ok() ? resume.status() : newest.status()).message() << "\n";
    return 1;
  }
  // A destination that holds events must hold these events: its newest one
  // is the source's event with the same sequence.
  if (*resume > 0) {
    absl::StatusOr<store::EventRow> mine = (*copied)->Get(*resume);
    absl::StatusOr<store::EventRow> theirs = (*source)->Get(*resume);
    if (!mine.ok() || !theirs.ok() || !SameEvent(*mine, *theirs)) {
      std::cerr << "pdk-archive copy: --to " << store::DisplayDb(to.db)
                << " already holds events that are not a copy of --from (its event "
                << *resume << " differs); copy into a new archive\n";
      return 1;
    }
  }

  const bool progress = ::isatty(STDERR_FILENO) != 0;
  const auto start = std::chrono::steady_clock::now();
  int64_t after = *resume;
  int64_t copied_rows = 0;
  // The next page is read (and its dedupe keys computed) on another thread
  // while this one writes the current page: the two engines work at once.
  auto read_page = [&source](int64_t start_after, int limit) -> absl::StatusOr<store::SequencePage> {
    absl::StatusOr<store::SequencePage> page =
        (*source)->ListAfterSequence(store::EventFilter{}, start_after, limit);
    if (page.ok()) {
      for (store::EventRow& row : page->rows) {
        row.dedupe_key = ingest::DedupeKey(row.topic, row.panel_id, row.event_id, row.raw);
      }
    }
    return page;
  };
  const int limit = static_cast<int>(batch_size);
  std::future<absl::StatusOr<store::SequencePage>> next;
  if (after < *newest) next = std::async(std::launch::async, read_page, after, limit);
  while (next.valid()) {
    absl::StatusOr<store::SequencePage> page = next.get();
    if (!page.ok()) {
      std::cerr << (progress ? "\r\033[K" : "") << "pdk-archive copy: reading --from: "
                << page.status().message() << "\n";
      return 1;
    }
    if (page->scanned_through <= after) break;
    const int64_t through = page->scanned_through;
    if (through < *newest) next = std::async(std::launch::async, read_page, through, limit);
    if (absl::Status stored = (*destination)->CopyIn(page->rows); !stored.ok()) {
      std::cerr << (progress ? "\r\033[K" : "") << "pdk-archive copy: writing --to: "
                << stored.message() << " (everything up to sequence " << after
                << " is copied; run copy again to resume)\n";
      if (next.valid()) next.wait();
      return 1;
    }
    copied_rows += static_cast<int64_t>(page->rows.size());
    after = through;
    if (progress) {
      std::cerr << "\rcopying: sequence " << after << " of " << *newest << ", " << copied_rows
                << " events copied" << std::flush;
    }
  }
  // Leave the copy fully indexed (work an engine deferred under load).
  (*destination)->sink().Maintain(store::BatchSink::Load::kIdle);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (progress) std::cerr << "\r\033[K";
  if (copied_rows == 0) {
    std::cout << "nothing to copy: --to holds every event of --from (through sequence "
              << after << ")\n";
    return 0;
  }
  std::cout << "copied " << copied_rows << " events (sequences " << *resume + 1 << " to "
            << after << ") in " << std::fixed << std::setprecision(1) << seconds << " s ("
            << std::setprecision(0)
            << (seconds > 0 ? static_cast<double>(copied_rows) / seconds : 0.0)
            << " events/s)\n";
  return 0;
}

}  // namespace pdkarchive::cli
