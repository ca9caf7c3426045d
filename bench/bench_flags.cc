#include "bench/bench_flags.h"

#include <charconv>
#include <cstdlib>
#include <iostream>
#include <string_view>
#include <system_error>

namespace pdkarchive::bench {

void Flags::Int(const char* name, int64_t* out, const char* help) {
  flags_.push_back({name, Kind::kInt, out, help, std::to_string(*out)});
}

void Flags::Double(const char* name, double* out, const char* help) {
  std::string text = std::to_string(*out);
  // Trim "2.000000" to "2".
  while (text.find('.') != std::string::npos &&
         (text.back() == '0' || text.back() == '.')) {
    const bool dot = text.back() == '.';
    text.pop_back();
    if (dot) break;
  }
  flags_.push_back({name, Kind::kDouble, out, help, text});
}

void Flags::String(const char* name, std::string* out, const char* help) {
  flags_.push_back({name, Kind::kString, out, help, *out});
}

void Flags::Bool(const char* name, bool* out, const char* help) {
  flags_.push_back({name, Kind::kBool, out, help, *out ? "true" : "false"});
}

std::string Flags::Usage() const {
  std::string text = "usage: " + usage_ + "\n\nflags:\n";
  for (const Flag& f : flags_) {
    text += "  --" + f.name;
    if (f.kind != Kind::kBool) text += " VALUE";
    text += "\n      " + f.help;
    if (!f.default_text.empty()) text += " (default " + f.default_text + ")";
    text += "\n";
  }
  return text;
}

void Flags::Fail(const std::string& reason) const {
  std::cerr << reason << "\n\n" << Usage();
  std::exit(2);
}

void Flags::Parse(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << Usage();
      std::exit(0);
    }
    if (arg.substr(0, 2) != "--")
      Fail("unexpected argument: " + std::string(arg));
    arg.remove_prefix(2);
    std::string name(arg);
    std::string value;
    bool has_value = false;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    Flag* flag = nullptr;
    for (Flag& f : flags_) {
      if (f.name == name) flag = &f;
    }
    if (flag == nullptr) Fail("unknown flag --" + name);
    if (flag->kind == Kind::kBool) {
      if (!has_value || value == "true" || value == "1") {
        *static_cast<bool*>(flag->out) = true;
      } else if (value == "false" || value == "0") {
        *static_cast<bool*>(flag->out) = false;
      } else {
        Fail("--" + name + " wants true or false");
      }
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) Fail("--" + name + " wants a value");
      value = argv[++i];
    }
    const char* begin = value.data();
    const char* end = value.data() + value.size();
    switch (flag->kind) {
      case Kind::kInt: {
        int64_t v = 0;
        auto [ptr, ec] = std::from_chars(begin, end, v);
        if (ec != std::errc() || ptr != end)
          Fail("--" + name + " wants an integer");
        *static_cast<int64_t*>(flag->out) = v;
        break;
      }
      case Kind::kDouble: {
        char* parsed_end = nullptr;
        const double v = std::strtod(value.c_str(), &parsed_end);
        if (value.empty() || parsed_end != value.c_str() + value.size()) {
          Fail("--" + name + " wants a number");
        }
        *static_cast<double*>(flag->out) = v;
        break;
      }
      case Kind::kString:
        *static_cast<std::string*>(flag->out) = value;
        break;
      case Kind::kBool:
        break;
    }
  }
}

}  // namespace pdkarchive::bench
