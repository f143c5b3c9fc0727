// Just enough XML for S3's answers: elements without attributes we need, found by tag name,
// with the five predefined entities and numeric references decoded. Not a general parser.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hmod::audit {

// The decoded text of the first <tag>...</tag> (with or without attributes), or "".
std::string XmlText(std::string_view xml, std::string_view tag);
// The raw inner XML of every <tag>...</tag>, in order (not decoded: nested elements).
std::vector<std::string_view> XmlElements(std::string_view xml, std::string_view tag);
// &amp; &lt; &gt; &quot; &apos; &#N; &#xN; decoded to UTF-8.
std::string XmlDecode(std::string_view s);

}  // namespace hmod::audit
