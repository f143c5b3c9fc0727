// license: one model for all users, opened per device by a small license blob that wraps the
// model's data key under HKDF(license key, device fingerprint) (FORMAT.md §5.7, seed 001).
#pragma once

#include <string>

#include "hmod/envelope.h"
#include "hmod/key_provider.h"

namespace hmod {

// `spec` is the license file path. The license key comes from $HMOD_LICENSE_KEY (64 hex
// digits) and the device fingerprint from $HMOD_DEVICE_FINGERPRINT, else DeviceFingerprint().
Result<std::unique_ptr<KeyProvider>> MakeLicenseProvider(const std::string& spec);

// This machine's fingerprint: hex SHA-256 of "hmod/v1 device" ‖ 0x00 ‖ /etc/machine-id.
Result<std::string> DeviceFingerprint();

// Makes the license text for the model whose opened header is `opened`, for one device.
Result<std::string> IssueLicense(const OpenedHeader& opened, const SecretBytes& license_key,
                                 const std::string& device_fingerprint);

}  // namespace hmod
