// What an S3 bucket policy enforces, read from its JSON. Only Deny statements that apply to
// everyone count: an Allow never stops a request that another Allow (an IAM policy) permits.
#pragma once

#include <string>

#include "hmod/result.h"

namespace hmod::audit {

struct PolicyFacts {
  // Deny (s3:* or the object actions) when aws:SecureTransport is false.
  bool denies_insecure_transport = false;
  // Deny s3:PutObject without (or with another) s3:x-amz-server-side-encryption.
  bool denies_unencrypted_uploads = false;
  std::string required_encryption;  // the value uploads must send ("aws:kms"), if one is named
};

// kFormat if `policy_json` is not a JSON policy document.
Result<PolicyFacts> AnalysePolicy(const std::string& policy_json);

}  // namespace hmod::audit
