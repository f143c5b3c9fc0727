// aws-kms:KEY — data keys wrapped by AWS KMS Encrypt and unwrapped by KMS Decrypt, bound to
// the file by the KMS encryption context (FORMAT.md §5.5; docs/providers/aws-kms.md).
// KEY is a key id, key ARN, alias/NAME or alias ARN. Credentials, region and endpoint come
// from the standard AWS variables and shared files (keys/aws_config.h).
#pragma once

#include <string>

#include "hmod/key_provider.h"
#include "keys/aws_config.h"

namespace hmod {

// Checks `key` and resolves the AWS configuration from the process environment. No network
// access: an alias is resolved to its key ARN on first use. Errors: kUsage (a malformed key,
// no credentials or region), kUnsupported, kKeyFile (unreadable AWS shared files).
Result<std::unique_ptr<KeyProvider>> MakeAwsKmsProvider(const std::string& key);
// As above with an explicit environment (tests).
Result<std::unique_ptr<KeyProvider>> MakeAwsKmsProvider(const std::string& key, const aws::EnvFn& env);

}  // namespace hmod
