// What an .hmod header says without a key (as `hmodctl inspect` shows it), condensed into
// one finding. Unauthenticated: the audit reports it, never trusts it for anything else.
#pragma once

#include <string>

#include "audit/audit.h"
#include "hmod/header.h"

namespace hmod::audit {

// Fills `f` (rule, level, message, remediation, details) for a parsed header. WARN when the
// tensor index is public, PASS otherwise.
void DescribeContainer(const Header& header, Finding& f);

// "file:0123..., aws-kms:arn:..." (key ids shortened for the one-line message).
std::string OpenersText(const Header& header);

}  // namespace hmod::audit
