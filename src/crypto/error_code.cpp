#include "hmod/result.h"

namespace hmod {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kUsage: return "usage";
    case ErrorCode::kIo: return "io";
    case ErrorCode::kFormat: return "format";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kNoMatchingKey: return "no_matching_key";
    case ErrorCode::kAuthFailed: return "auth_failed";
    case ErrorCode::kContextMismatch: return "context_mismatch";
    case ErrorCode::kKeyFile: return "key_file";
    case ErrorCode::kCrypto: return "crypto";
    case ErrorCode::kLimit: return "limit";
  }
  return "unknown";
}

}  // namespace hmod
