#include "cli/client_commands.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/flags.h"
#include "google/protobuf/util/json_util.h"
#include "ingest/normalizer.h"
#include "pdk/archive/v1/event_archive.grpc.pb.h"
#include "query/csv_writer.h"
#include "store/event.h"

namespace pdkarchive::cli {
namespace {

namespace v1 = ::pdk::archive::v1;

using store::kDayMs;

// The flags every client command shares: where the server is, and the filter.
struct FilterFlags {
  std::string server = "127.0.0.1:50051";
  std::string from;
  std::string to;
  std::vector<std::string> topics;
  std::vector<std::string> panels;
  std::vector<std::string> doors;
  std::vector<std::string> people;
  std::vector<std::string> ous;
  std::string family;

  void Declare(FlagSet& flags) {
    flags.String("server", "HOST:PORT", &server, "the pdk-archive gRPC address");
    flags.String("from", "TIME", &from,
                 "events at or after TIME (RFC 3339, or a date YYYY-MM-DD = its 00:00 UTC)");
    flags.String("to", "TIME", &to,
                 "events before TIME (RFC 3339, or a date YYYY-MM-DD = through that whole day)");
    flags.List("topic", "TOPIC", &topics,
               "a topic, or a prefix such as door.request.* (repeatable, or comma-separated)");
    flags.List("panel", "ID", &panels, "panel id (repeatable)");
    flags.List("door", "ID", &doors, "door id (repeatable)");
    flags.List("person", "ID", &people, "person id (repeatable)");
    flags.List("ou", "ID", &ous, "organization id (repeatable)");
    flags.String("family", "FAMILY", &family, "org, panel or unknown");
  }
};

// Parses a --from/--to value to ms. A bare date means its midnight (UTC),
// or, with `date_means_end_of_day`, the next midnight: "--to 2026-03-31"
// includes March 31.
absl::StatusOr<int64_t> ParseTimeFlag(const std::string& flag, const std::string& text,
                                      bool date_means_end_of_day) {
  if (text.size() == 10 && text[4] == '-' && text[7] == '-') {
    absl::StatusOr<int64_t> ms = ingest::ParseIsoTimeMs(text + "T00:00:00Z");
    if (ms.ok()) return date_means_end_of_day ? *ms + kDayMs : *ms;
  }
  absl::StatusOr<int64_t> ms = ingest::ParseIsoTimeMs(text);
  if (!ms.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, " wants an RFC 3339 time (2026-03-01T08:00:00Z) or a date "
        "(2026-03-01), got \"", text, "\""));
  }
  return *ms;
}

void SetTimestamp(int64_t ms, google::protobuf::Timestamp* ts) {
  int64_t seconds = ms / 1000;
  int64_t millis = ms % 1000;
  if (millis < 0) {
    millis += 1000;
    seconds -= 1;
  }
  ts->set_seconds(seconds);
  ts->set_nanos(static_cast<int32_t>(millis * 1000000));
}

absl::Status ParseIds(const std::string& flag, const std::vector<std::string>& values,
                      google::protobuf::RepeatedField<int64_t>* out) {
  for (const std::string& v : values) {
    int64_t id = 0;
    if (!absl::SimpleAtoi(v, &id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, " wants numeric ids, got \"", v, "\""));
    }
    out->Add(id);
  }
  return absl::OkStatus();
}

absl::Status BuildFilter(const FilterFlags& f, v1::EventFilter* filter) {
  if (!f.from.empty()) {
    absl::StatusOr<int64_t> ms = ParseTimeFlag("from", f.from, false);
    if (!ms.ok()) return ms.status();
    SetTimestamp(*ms, filter->mutable_start_time());
  }
  if (!f.to.empty()) {
    absl::StatusOr<int64_t> ms = ParseTimeFlag("to", f.to, true);
    if (!ms.ok()) return ms.status();
    SetTimestamp(*ms, filter->mutable_end_time());
  }
  for (const auto& t : f.topics) filter->add_topics(t);
  for (const auto& p : f.panels) filter->add_panel_ids(p);
  for (const auto& o : f.ous) filter->add_ou_ids(o);
  if (absl::Status s = ParseIds("door", f.doors, filter->mutable_door_ids()); !s.ok()) return s;
  if (absl::Status s = ParseIds("person", f.people, filter->mutable_person_ids()); !s.ok()) {
    return s;
  }
  filter->set_family(f.family);
  return absl::OkStatus();
}

std::unique_ptr<v1::EventArchive::Stub> Connect(const std::string& server) {
  return v1::EventArchive::NewStub(
      grpc::CreateChannel(server, grpc::InsecureChannelCredentials()));
}

int RpcFailed(const char* command, const std::string& server, const grpc::Status& status) {
  std::cerr << "pdk-archive " << command << ": " << server << ": "
            << (status.error_code() == grpc::StatusCode::UNAVAILABLE
                    ? "server unavailable: "
                    : "")
            << status.error_message() << "\n";
  return 1;
}

// Parses flags; returns an exit status to stop with, or nullopt to go on.
std::optional<int> ParseOrExit(const char* command, FlagSet& flags,
                               const std::vector<std::string>& args) {
  if (absl::Status s = flags.Parse(args); !s.ok()) {
    std::cerr << "pdk-archive " << command << ": " << s.message() << "\n\n" << flags.Help();
    return 2;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  return std::nullopt;
}

std::string FormatTime(const google::protobuf::Timestamp& ts) {
  return query::FormatRfc3339Millis(ts.seconds() * 1000 + ts.nanos() / 1000000);
}

}  // namespace

int RunEvents(const std::vector<std::string>& args) {
  FilterFlags filter_flags;
  int64_t limit = 100;
  bool json = false;
  bool descending = false;
  FlagSet flags("pdk-archive events [flags]",
                "Lists archived events from a running pdk-archive server, oldest first\n"
                "(--desc for newest first), as a table or as JSON lines (--json).");
  filter_flags.Declare(flags);
  flags.Int("limit", "N", &limit, "print at most N events; 0 = all");
  flags.Bool("desc", &descending, "newest first");
  flags.Bool("json", &json, "one JSON object per line instead of a table");
  if (auto exit = ParseOrExit("events", flags, args)) return *exit;
  if (limit < 0) {
    std::cerr << "pdk-archive events: --limit must be >= 0\n";
    return 2;
  }
  v1::ListEventsRequest request;
  if (absl::Status s = BuildFilter(filter_flags, request.mutable_filter()); !s.ok()) {
    std::cerr << "pdk-archive events: " << s.message() << "\n";
    return 2;
  }
  request.set_descending(descending);
  auto stub = Connect(filter_flags.server);
  if (!json) {
    std::cout << std::left << std::setw(10) << "SEQUENCE" << std::setw(26) << "OCCURRED (UTC)"
              << std::setw(30) << "TOPIC" << std::setw(12) << "PANEL" << std::setw(7)
              << "DOOR" << std::setw(20) << "DOOR NAME" << "PERSON\n";
  }
  google::protobuf::util::JsonPrintOptions json_options;
  json_options.preserve_proto_field_names = true;
  int64_t printed = 0;
  while (limit == 0 || printed < limit) {
    const int64_t want = limit == 0 ? 1000 : std::min<int64_t>(1000, limit - printed);
    request.set_page_size(static_cast<int32_t>(want));
    v1::ListEventsResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    grpc::Status status = stub->ListEvents(&context, request, &response);
    if (!status.ok()) return RpcFailed("events", filter_flags.server, status);
    for (const v1::Event& e : response.events()) {
      if (json) {
        std::string line;
        (void)google::protobuf::util::MessageToJsonString(e, &line, json_options);
        std::cout << line << "\n";
      } else {
        std::cout << std::left << std::setw(10) << e.sequence() << std::setw(26)
                  << FormatTime(e.occur_time()) << std::setw(30) << e.topic()
                  << std::setw(12) << e.panel_id() << std::setw(7)
                  << (e.has_door_id() ? absl::StrCat(e.door_id()) : "-") << std::setw(20)
                  << (e.door_name().empty() ? "-" : e.door_name().substr(0, 19))
                  << (e.has_person_id() ? absl::StrCat(e.person_id()) : "-") << "\n";
      }
      ++printed;
    }
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  std::cout << std::flush;
  return 0;
}

int RunCount(const std::vector<std::string>& args) {
  FilterFlags filter_flags;
  std::vector<std::string> by;
  bool json = false;
  FlagSet flags("pdk-archive count [--by DIM,...] [flags]",
                "Counts archived events on a running pdk-archive server, grouped by any of\n"
                "topic, panel, door, person, hour, day (hours and days in UTC).");
  filter_flags.Declare(flags);
  flags.List("by", "DIMS", &by, "group by these, e.g. door,day");
  flags.Bool("json", &json, "one JSON object per group instead of a table");
  if (auto exit = ParseOrExit("count", flags, args)) return *exit;
  v1::CountEventsRequest request;
  if (absl::Status s = BuildFilter(filter_flags, request.mutable_filter()); !s.ok()) {
    std::cerr << "pdk-archive count: " << s.message() << "\n";
    return 2;
  }
  static const std::pair<const char*, v1::Dimension> kDimensions[] = {
      {"topic", v1::DIMENSION_TOPIC}, {"panel", v1::DIMENSION_PANEL},
      {"door", v1::DIMENSION_DOOR},   {"person", v1::DIMENSION_PERSON},
      {"hour", v1::DIMENSION_HOUR},   {"day", v1::DIMENSION_DAY}};
  for (const std::string& name : by) {
    bool found = false;
    for (const auto& [text, dim] : kDimensions) {
      if (name == text) {
        request.add_group_by(dim);
        found = true;
      }
    }
    if (!found) {
      std::cerr << "pdk-archive count: --by: unknown dimension \"" << name
                << "\" (want topic, panel, door, person, hour or day)\n";
      return 2;
    }
  }
  auto stub = Connect(filter_flags.server);
  v1::CountEventsResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
  grpc::Status status = stub->CountEvents(&context, request, &response);
  if (!status.ok()) return RpcFailed("count", filter_flags.server, status);
  if (json) {
    google::protobuf::util::JsonPrintOptions json_options;
    json_options.preserve_proto_field_names = true;
    for (const v1::Group& g : response.groups()) {
      std::string line;
      (void)google::protobuf::util::MessageToJsonString(g, &line, json_options);
      std::cout << line << "\n";
    }
    return 0;
  }
  for (const std::string& name : by) std::cout << std::left << std::setw(30) << name;
  std::cout << "COUNT\n";
  for (const v1::Group& g : response.groups()) {
    for (const std::string& k : g.key()) std::cout << std::setw(30) << (k.empty() ? "-" : k);
    std::cout << g.count() << "\n";
  }
  if (!by.empty()) std::cout << "total " << response.total() << "\n";
  return 0;
}

int RunExport(const std::vector<std::string>& args) {
  FilterFlags filter_flags;
  std::string output = "-";
  bool include_raw = false;
  FlagSet flags("pdk-archive export [-o FILE] [flags]",
                "Exports archived events from a running pdk-archive server as RFC 4180\n"
                "CSV, oldest first. Writes FILE only once the export is complete.");
  filter_flags.Declare(flags);
  flags.String("output", "FILE", &output, "where to write the CSV; - = standard output");
  flags.Alias('o', "output");
  flags.Bool("raw", &include_raw, "add the raw payload as the last column");
  if (auto exit = ParseOrExit("export", flags, args)) return *exit;
  v1::ExportEventsRequest request;
  if (absl::Status s = BuildFilter(filter_flags, request.mutable_filter()); !s.ok()) {
    std::cerr << "pdk-archive export: " << s.message() << "\n";
    return 2;
  }
  request.set_include_raw(include_raw);

  const bool to_stdout = output == "-";
  const std::string partial = output + ".partial";
  std::ofstream file;
  if (!to_stdout) {
    file.open(partial, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::cerr << "pdk-archive export: cannot write " << partial << "\n";
      return 1;
    }
  }
  std::ostream& out = to_stdout ? std::cout : file;
  const bool progress = ::isatty(STDERR_FILENO) != 0;

  auto stub = Connect(filter_flags.server);
  grpc::ClientContext context;
  auto reader = stub->ExportEvents(&context, request);
  v1::ExportEventsResponse chunk;
  uint64_t bytes = 0;
  uint64_t lines = 0;
  const auto start = std::chrono::steady_clock::now();
  auto last_report = start;
  while (reader->Read(&chunk)) {
    const std::string& csv = chunk.csv_chunk();
    out.write(csv.data(), static_cast<std::streamsize>(csv.size()));
    bytes += csv.size();
    for (char c : csv) lines += c == '\n' ? 1 : 0;
    const auto now = std::chrono::steady_clock::now();
    if (progress && now - last_report > std::chrono::milliseconds(250)) {
      last_report = now;
      std::cerr << "\rexporting: " << (lines > 0 ? lines - 1 : 0) << " rows, "
                << bytes / 1024 << " KiB" << std::flush;
    }
  }
  grpc::Status status = reader->Finish();
  out.flush();
  if (progress) std::cerr << "\r\033[K";
  if (!status.ok() || !out) {
    if (!to_stdout) {
      file.close();
      std::filesystem::remove(partial);
    }
    if (!status.ok()) return RpcFailed("export", filter_flags.server, status);
    std::cerr << "pdk-archive export: writing " << output << " failed\n";
    return 1;
  }
  if (!to_stdout) {
    file.close();
    std::error_code ec;
    std::filesystem::rename(partial, output, ec);
    if (ec) {
      std::cerr << "pdk-archive export: cannot rename " << partial << " to " << output
                << ": " << ec.message() << "\n";
      return 1;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (progress || !to_stdout) {
    std::cerr << "exported " << (lines > 0 ? lines - 1 : 0) << " rows (" << bytes
              << " bytes) in " << std::fixed << std::setprecision(1) << seconds << " s"
              << (to_stdout ? "" : " to " + output) << "\n";
  }
  return 0;
}

}  // namespace pdkarchive::cli
