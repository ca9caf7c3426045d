#include "cli/flags.h"

#include <algorithm>
#include <sstream>
#include <utility>

#include <toml++/toml.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace pdkarchive::cli {
namespace {

std::string TypeName(toml::node_type type) {
  std::ostringstream out;
  out << type;
  return out.str();
}

}  // namespace

FlagSet::FlagSet(std::string usage, std::string description)
    : usage_(std::move(usage)), description_(std::move(description)) {}

void FlagSet::String(std::string name, std::string value_name, std::string* target,
                     std::string help) {
  std::string default_text = target->empty() ? "" : *target;
  flags_.push_back({Kind::kString, std::move(name), std::move(value_name), std::move(help),
                    std::move(default_text), [target](const std::string& v) {
                      *target = v;
                      return absl::OkStatus();
                    }});
}

void FlagSet::OptionalString(std::string name, std::string value_name,
                             std::optional<std::string>* target, std::string help) {
  flags_.push_back({Kind::kString, std::move(name), std::move(value_name), std::move(help), "",
                    [target](const std::string& v) {
                      *target = v;
                      return absl::OkStatus();
                    }});
}

void FlagSet::Int(std::string name, std::string value_name, int64_t* target,
                  std::string help) {
  std::string flag_name = name;
  flags_.push_back({Kind::kInt, std::move(name), std::move(value_name), std::move(help),
                    absl::StrCat(*target), [target, flag_name](const std::string& v) {
                      int64_t parsed = 0;
                      if (!absl::SimpleAtoi(v, &parsed)) {
                        return absl::InvalidArgumentError(absl::StrCat(
                            "--", flag_name, " wants an integer, got \"", v, "\""));
                      }
                      *target = parsed;
                      return absl::OkStatus();
                    }});
}

void FlagSet::Bool(std::string name, bool* target, std::string help) {
  flags_.push_back({Kind::kBool, std::move(name), "", std::move(help), "",
                    [target](const std::string&) {
                      *target = true;
                      return absl::OkStatus();
                    }});
}

void FlagSet::List(std::string name, std::string value_name,
                   std::vector<std::string>* target, std::string help) {
  flags_.push_back({Kind::kList, std::move(name), std::move(value_name), std::move(help), "",
                    [target](const std::string& v) {
                      for (absl::string_view part : absl::StrSplit(v, ',')) {
                        if (!part.empty()) target->emplace_back(part);
                      }
                      return absl::OkStatus();
                    }});
}

void FlagSet::Alias(char short_name, std::string long_name) {
  aliases_.emplace_back(short_name, std::move(long_name));
}

const FlagSet::Flag* FlagSet::Find(const std::string& name) const {
  for (const Flag& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

absl::Status FlagSet::Parse(const std::vector<std::string>& args,
                            std::vector<std::string>* positional) {
  std::optional<std::string> config_path;
  std::vector<std::string> given;  // flags set on the command line
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    for (const auto& [short_name, long_name] : aliases_) {
      if (arg.size() == 2 && arg[0] == '-' && arg[1] == short_name) arg = "--" + long_name;
    }
    if (arg == "--help" || arg == "-h") {
      help_requested_ = true;
      continue;
    }
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      if (positional != nullptr && (arg == "-" || arg.empty() || arg[0] != '-')) {
        positional->push_back(arg);
        continue;
      }
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\""));
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (name == "config") {
      if (!value) {
        if (i + 1 >= args.size()) {
          return absl::InvalidArgumentError("--config needs a value (FILE)");
        }
        value = args[++i];
      }
      if (config_path) return absl::InvalidArgumentError("--config given twice");
      config_path = *value;
      continue;
    }
    const Flag* flag = Find(name);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (flag->value_name.empty()) {
      if (value) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      }
      if (absl::Status s = flag->set(""); !s.ok()) return s;
      given.push_back(name);
      continue;
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value (", flag->value_name, ")"));
      }
      value = args[++i];
    }
    if (absl::Status s = flag->set(*value); !s.ok()) return s;
    given.push_back(name);
  }
  if (config_path) return ApplyConfig(*config_path, given);
  return absl::OkStatus();
}

absl::Status FlagSet::ApplyConfig(const std::string& path,
                                  const std::vector<std::string>& given) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const toml::source_position at = e.source().begin;
    if (at.line == 0) {  // the file could not be read at all
      return absl::InvalidArgumentError(
          absl::StrCat("--config ", path, ": ", std::string(e.description())));
    }
    return absl::InvalidArgumentError(absl::StrCat("--config ", path, ":", at.line, ":",
                                                   at.column, ": ",
                                                   std::string(e.description())));
  }
  for (const auto& [toml_key, node] : table) {
    const std::string key(toml_key.str());
    const std::string where =
        absl::StrCat("--config ", path, ":", node.source().begin.line, ": key \"", key, "\"");
    const Flag* flag = Find(key);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " is unknown (not a flag of this command)"));
    }
    if (Find(key + "-file") != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, " would put a secret in the config file; give \"", key,
          "-file\" (a file holding it) instead"));
    }
    if (std::find(given.begin(), given.end(), key) != given.end()) continue;
    auto wrong_type = [&](const char* wanted) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " wants ", wanted, ", got ", TypeName(node.type())));
    };
    switch (flag->kind) {
      case Kind::kString:
        if (!node.is_string()) return wrong_type("a string");
        if (absl::Status s = flag->set(**node.as_string()); !s.ok()) return s;
        break;
      case Kind::kInt:
        if (!node.is_integer()) return wrong_type("an integer");
        if (absl::Status s = flag->set(absl::StrCat(**node.as_integer())); !s.ok()) return s;
        break;
      case Kind::kBool:
        if (!node.is_boolean()) return wrong_type("true or false");
        if (**node.as_boolean()) {
          if (absl::Status s = flag->set(""); !s.ok()) return s;
        }
        break;
      case Kind::kList:
        if (node.is_string()) {
          if (absl::Status s = flag->set(**node.as_string()); !s.ok()) return s;
          break;
        }
        if (!node.is_array() || (!node.as_array()->empty() &&
                                 !node.as_array()->is_homogeneous(toml::node_type::string))) {
          return wrong_type("a string or an array of strings");
        }
        for (const toml::node& item : *node.as_array()) {
          if (absl::Status s = flag->set(**item.as_string()); !s.ok()) return s;
        }
        break;
    }
  }
  return absl::OkStatus();
}

std::string FlagSet::Help() const {
  std::string out = absl::StrCat("usage: ", usage_, "\n");
  if (!description_.empty()) absl::StrAppend(&out, "\n", description_, "\n");
  absl::StrAppend(&out, "\nflags:\n");
  for (const Flag& f : flags_) {
    std::string left = absl::StrCat("  --", f.name);
    if (!f.value_name.empty()) absl::StrAppend(&left, " ", f.value_name);
    if (left.size() < 28) left.resize(28, ' ');
    else absl::StrAppend(&left, "\n", std::string(28, ' '));
    absl::StrAppend(&out, left, f.help);
    if (!f.default_text.empty()) absl::StrAppend(&out, " (default ", f.default_text, ")");
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out,
                  "  --config FILE             read flags from this TOML file (keys are the flag\n"
                  "                            names: db = \"...\"); the command line wins\n"
                  "  --help                    show this help\n");
  return out;
}

}  // namespace pdkarchive::cli
