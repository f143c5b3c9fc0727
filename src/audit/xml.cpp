#include "audit/xml.h"

#include <cstdlib>

namespace hmod::audit {
namespace {

void AppendUtf8(std::string& out, unsigned long cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x110000) {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Finds the next <tag> or <tag ...> at or after `from`; returns the position after '>'.
size_t OpenTagEnd(std::string_view xml, std::string_view tag, size_t from, size_t* start) {
  while (true) {
    const size_t lt = xml.find('<', from);
    if (lt == std::string_view::npos) return std::string_view::npos;
    const size_t name_end = lt + 1 + tag.size();
    if (xml.substr(lt + 1, tag.size()) == tag && name_end < xml.size() &&
        (xml[name_end] == '>' || xml[name_end] == ' ' || xml[name_end] == '\t' || xml[name_end] == '\n')) {
      const size_t gt = xml.find('>', name_end);
      if (gt == std::string_view::npos) return std::string_view::npos;
      *start = lt;
      return gt + 1;
    }
    from = lt + 1;
  }
}

}  // namespace

std::string XmlDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out.push_back(s[i]);
      continue;
    }
    const size_t semi = s.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) {
      out.push_back('&');
      continue;
    }
    const std::string_view ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp") out.push_back('&');
    else if (ent == "lt") out.push_back('<');
    else if (ent == "gt") out.push_back('>');
    else if (ent == "quot") out.push_back('"');
    else if (ent == "apos") out.push_back('\'');
    else if (!ent.empty() && ent[0] == '#') {
      const std::string num(ent.substr(1));
      const bool hex = !num.empty() && (num[0] == 'x' || num[0] == 'X');
      AppendUtf8(out, std::strtoul(num.c_str() + (hex ? 1 : 0), nullptr, hex ? 16 : 10));
    } else {
      out.append(s.substr(i, semi - i + 1));
    }
    i = semi;
  }
  return out;
}

std::vector<std::string_view> XmlElements(std::string_view xml, std::string_view tag) {
  std::vector<std::string_view> out;
  const std::string close = "</" + std::string(tag) + ">";
  size_t from = 0, start = 0;
  while (true) {
    const size_t body = OpenTagEnd(xml, tag, from, &start);
    if (body == std::string_view::npos) break;
    if (xml[body - 2] == '/') {  // <tag/>
      out.push_back({});
      from = body;
      continue;
    }
    const size_t end = xml.find(close, body);
    if (end == std::string_view::npos) break;
    out.push_back(xml.substr(body, end - body));
    from = end + close.size();
  }
  return out;
}

std::string XmlText(std::string_view xml, std::string_view tag) {
  auto all = XmlElements(xml, tag);
  return all.empty() ? std::string() : XmlDecode(all.front());
}

}  // namespace hmod::audit
