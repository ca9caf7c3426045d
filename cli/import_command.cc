#include "cli/import_command.h"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iomanip>
#include <iostream>

#include "absl/strings/ascii.h"
#include "cli/archive_flags.h"
#include "cli/flags.h"
#include "ingest/normalizer.h"
#include "store/archive.h"
#include "timeutil/time_util.h"

namespace pdkarchive::cli {
namespace {

constexpr char kDescription[] =
    "Loads PDK webhook payloads into the archive, one JSON object per line\n"
    "(FILE, or - for standard input), through the same normalization and\n"
    "dedupe as live deliveries: a payload already archived is not stored again.\n"
    "Lines that are not valid payloads are reported with their line number and\n"
    "skipped. Signatures are not checked: only import files you trust.";

}  // namespace

int RunImport(const std::vector<std::string>& args) {
  ArchiveFlags archive_flags;
  std::string subscription = "import";
  int64_t batch_size = 5000;
  int64_t api = 1;
  FlagSet flags("pdk-archive import [flags] FILE", kDescription);
  AddArchiveFlags(flags, &archive_flags);
  flags.String("subscription", "NAME", &subscription,
               "recorded as the events' subscription");
  flags.Int("batch", "N", &batch_size, "events per transaction");
  flags.Int("api", "1|2", &api,
            "PDK API version of the payloads, whose topic catalog reads them");
  std::vector<std::string> files;
  if (absl::Status s = flags.Parse(args, &files); !s.ok()) {
    std::cerr << "pdk-archive import: " << s.message() << "\n\n" << flags.Help();
    return 2;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  if (files.size() != 1 || batch_size <= 0 || (api != 1 && api != 2)) {
    std::cerr << "pdk-archive import: want exactly one FILE, a positive --batch "
                 "and --api 1 or 2\n\n"
              << flags.Help();
    return 2;
  }
  std::ifstream file;
  const bool from_stdin = files[0] == "-";
  if (!from_stdin) {
    file.open(files[0], std::ios::binary);
    if (!file) {
      std::cerr << "pdk-archive import: cannot read " << files[0] << "\n";
      return 1;
    }
  }
  std::istream& in = from_stdin ? std::cin : file;

  absl::StatusOr<std::unique_ptr<store::Archive>> archive = OpenArchiveFromFlags(archive_flags);
  if (!archive.ok()) {
    std::cerr << "pdk-archive import: " << archive.status().message() << "\n";
    return 1;
  }
  store::BatchSink& sink = (*archive)->sink();

  const bool progress = ::isatty(STDERR_FILENO) != 0;
  const auto start = std::chrono::steady_clock::now();
  uint64_t line_number = 0;
  uint64_t stored = 0;
  uint64_t duplicates = 0;
  uint64_t refused = 0;
  std::vector<store::EventRow> batch;
  batch.reserve(static_cast<size_t>(batch_size));

  auto flush = [&]() -> bool {
    if (batch.empty()) return true;
    absl::StatusOr<std::vector<store::AppendResult>> results = sink.AppendBatch(batch);
    if (!results.ok()) {
      std::cerr << "pdk-archive import: " << results.status().message() << " (after line "
                << line_number << "; everything before the last "
                << batch.size() << " events is stored)\n";
      return false;
    }
    for (const store::AppendResult& r : *results) (r.duplicate ? duplicates : stored) += 1;
    batch.clear();
    sink.Maintain(store::BatchSink::Load::kBacklog);
    if (progress) {
      std::cerr << "\rimporting: line " << line_number << ", " << stored << " stored"
                << std::flush;
    }
    return true;
  };

  std::string line;
  while (std::getline(in, line)) {
    ++line_number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    absl::StatusOr<ingest::Normalized> n = ingest::Normalize(
        line, timeutil::NowMs(), subscription, static_cast<int>(api));
    if (!n.ok()) {
      ++refused;
      std::cerr << (progress ? "\r\033[K" : "") << "pdk-archive import: line "
                << line_number << ": " << n.status().message() << "\n";
      continue;
    }
    batch.push_back(std::move(n->row));
    if (batch.size() >= static_cast<size_t>(batch_size) && !flush()) return 1;
  }
  if (!flush()) return 1;
  // Leave every event indexed; a refusal here loses nothing (readers read
  // unmerged events, and the next writer merges them).
  sink.Maintain(store::BatchSink::Load::kIdle);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (progress) std::cerr << "\r\033[K";
  std::cout << "imported " << stored << " events, " << duplicates << " already archived, "
            << refused << " lines refused, in " << std::fixed << std::setprecision(1)
            << seconds << " s (" << std::setprecision(0)
            << (seconds > 0 ? static_cast<double>(stored + duplicates) / seconds : 0.0)
            << " events/s)\n";
  return refused == 0 ? 0 : 1;
}

}  // namespace pdkarchive::cli
