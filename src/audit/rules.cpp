// The catalogue of audit checks. docs/AUDIT.md explains each one at length; the rationale
// here is what SARIF viewers show next to a finding.
#include <algorithm>

#include "audit/audit.h"

namespace hmod::audit {

const char* LevelName(Level level) {
  switch (level) {
    case Level::kPass: return "pass";
    case Level::kWarn: return "warn";
    case Level::kFail: return "fail";
  }
  return "fail";
}

const std::vector<Rule>& Rules() {
  static const std::vector<Rule> kRules = {
      // Local trees.
      {"local.plaintext-model", "Model weights stored in plaintext",
       "Anyone who can read the disk, a backup or a copied directory gets the weights. Recognised by "
       "content (safetensors, PyTorch, pickle, GGUF, ONNX, HDF5/Keras, TFLite, NumPy), not by extension."},
      {"local.hmod-file", "Encrypted .hmod model",
       "Reports the suite, who can open the file (wrapped keys), the publisher signature and whether the "
       "tensor index (names, dtypes, shapes) is readable without a key."},
      {"local.legacy-container", "Legacy ENCMODEL/ENVMODEL container",
       "Whole-file containers without key commitment, chunking or an authenticated key list; migrate them "
       "to .hmod."},
      {"local.key-file-permissions", "Key file readable by group or others",
       "A key file grants every right its key has. hmodctl refuses key files with any group/other bits; "
       "other tools may not."},
      {"local.key-beside-model", "Key stored beside the data it protects",
       "A key that opens an encrypted model in the same tree turns the encryption into obfuscation: "
       "whoever copies the tree gets both."},
      {"local.tmpfs-plaintext", "Decrypted model left in tmpfs",
       "Loaders may decrypt into tmpfs (/dev/shm) with mode 0600 while they run; a copy that stays, or one "
       "readable by others, is plaintext on a shared machine."},
      {"local.unreadable", "File could not be checked",
       "The auditor could not read the file, so nothing is known about it."},
      // S3.
      {"s3.default-encryption", "Bucket default encryption",
       "SSE-KMS (or DSSE-KMS) adds a second permission, kms:Decrypt, between a reader and the bytes; SSE-S3 "
       "only protects the disks; no default leaves new objects to each uploader."},
      {"s3.policy-deny-unencrypted", "Bucket policy denies unencrypted uploads",
       "A Deny on s3:PutObject without s3:x-amz-server-side-encryption makes the encryption choice "
       "enforced rather than a default a client can override."},
      {"s3.policy-secure-transport", "Bucket policy denies non-TLS access",
       "A Deny with aws:SecureTransport = false keeps weights and credentials off plain HTTP."},
      {"s3.public-access-block", "Public access block",
       "All four settings (BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets) "
       "stop a single ACL or policy mistake from publishing the bucket."},
      {"s3.versioning", "Bucket versioning",
       "Versioning keeps overwritten or deleted models recoverable and makes tampering visible."},
      {"s3.object-encryption", "Object server-side encryption",
       "Objects written before a default was set, or with explicit headers, keep their own encryption."},
      {"s3.plaintext-model", "Model object stored in plaintext",
       "Server-side encryption is transparent to every reader with s3:GetObject; a plaintext model object is "
       "readable by all of them. Recognised from the object's first bytes."},
      {"s3.hmod-object", "Encrypted .hmod model object",
       "The object is an .hmod container: readers also need a key that opens it."},
      // TLS.
      {"tls.legacy-versions", "TLS 1.0 or 1.1 accepted",
       "TLS 1.0 and 1.1 are deprecated (RFC 8996): no AEAD ciphers, SHA-1/MD5 in the handshake."},
      {"tls.tls13", "TLS 1.3 offered",
       "TLS 1.3 has only forward-secret AEAD suites and an encrypted certificate."},
      {"tls.weak-ciphers", "Weak cipher suites accepted",
       "NULL, anonymous, export, RC4, DES/3DES and MD5 suites are broken; static-RSA key exchange has no "
       "forward secrecy."},
      {"tls.certificate-chain", "Certificate chain trusted",
       "The chain must lead to a trusted root (the system store, or --ca)."},
      {"tls.hostname", "Certificate matches the host name",
       "A certificate for another name lets any holder of it impersonate the endpoint."},
      {"tls.certificate-expiry", "Certificate validity",
       "An expired certificate breaks clients or trains them to ignore errors; under 30 days left is a "
       "warning."},
      {"tls.client-certificate", "Client certificate required (mTLS)",
       "A model registry or artifact store that requires client certificates refuses unknown machines "
       "before any credential or token is checked."},
  };
  return kRules;
}

const Rule* FindRule(std::string_view id) {
  const auto& rules = Rules();
  auto it = std::find_if(rules.begin(), rules.end(), [&](const Rule& r) { return id == r.id; });
  return it == rules.end() ? nullptr : &*it;
}

}  // namespace hmod::audit
