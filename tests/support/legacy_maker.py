#!/usr/bin/env python3
"""Makes legacy ENCMODEL / ENVMODEL files exactly as the seed document's code does
(../shared/seeds/000_d75661d22333b1b2.txt: ModelEncryptor.encrypt_file and
EnvelopeEncryptor.encrypt_model), for tests/legacy_test.cpp. See docs/LEGACY.md.

  legacy_maker.py encmodel --key-file RAW32 [--aad TEXT] IN OUT
  legacy_maker.py envmodel --key-id KEY [--meta K=V ...] IN OUT
  legacy_maker.py decrypt-encmodel --key-file RAW32 [--aad TEXT] IN OUT   (the seed's decrypt_file)
  legacy_maker.py decrypt-envmodel IN OUT                                 (the seed's decrypt_model)

AWS settings come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
AWS_ENDPOINT_URL_KMS), as the tests' moto_server fixture sets them.
"""
import argparse
import base64
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Dict, Optional

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


# --- the seed's ModelEncryptor (encrypt_file / decrypt_file), unchanged in substance ---------
class ModelEncryptor:
    HEADER_MAGIC = b"ENCMODEL"
    HEADER_VERSION = 1
    NONCE_SIZE = 12
    KEY_SIZE = 32

    def __init__(self, key: Optional[bytes] = None):
        self.key = key or AESGCM.generate_key(bit_length=256)
        self._aesgcm = AESGCM(self.key)

    def encrypt_file(self, input_path: str, output_path: str, associated_data: Optional[bytes] = None) -> Dict:
        input_path = Path(input_path)
        output_path = Path(output_path)
        plaintext = input_path.read_bytes()
        plaintext_hash = hashlib.sha256(plaintext).hexdigest()
        nonce = os.urandom(self.NONCE_SIZE)
        ciphertext = self._aesgcm.encrypt(nonce, plaintext, associated_data)
        metadata = {
            "version": self.HEADER_VERSION,
            "algorithm": "AES-256-GCM",
            "plaintext_size": len(plaintext),
            "plaintext_hash": plaintext_hash,
            "has_aad": associated_data is not None,
        }
        metadata_bytes = json.dumps(metadata).encode()
        with open(output_path, "wb") as f:
            f.write(self.HEADER_MAGIC)
            f.write(len(metadata_bytes).to_bytes(4, "big"))
            f.write(metadata_bytes)
            f.write(nonce)
            f.write(ciphertext)
        return {"plaintext_size": len(plaintext), "ciphertext_size": len(ciphertext), "plaintext_hash": plaintext_hash}

    def decrypt_file(self, input_path: str, output_path: str, associated_data: Optional[bytes] = None) -> Dict:
        with open(input_path, "rb") as f:
            magic = f.read(len(self.HEADER_MAGIC))
            if magic != self.HEADER_MAGIC:
                raise ValueError("Not an encrypted model file")
            metadata_size = int.from_bytes(f.read(4), "big")
            metadata = json.loads(f.read(metadata_size))
            nonce = f.read(self.NONCE_SIZE)
            ciphertext = f.read()
        plaintext = self._aesgcm.decrypt(nonce, ciphertext, associated_data)
        actual_hash = hashlib.sha256(plaintext).hexdigest()
        if actual_hash != metadata.get("plaintext_hash"):
            raise ValueError("Integrity check failed")
        Path(output_path).write_bytes(plaintext)
        return {"size": len(plaintext), "hash": actual_hash}


# --- the seed's EnvelopeEncryptor (encrypt_model / decrypt_model) ----------------------------
class EnvelopeEncryptor:
    def __init__(self, kms_client, kms_key_id: str):
        self.kms_client = kms_client
        self.kms_key_id = kms_key_id

    def encrypt_model(self, model_path: str, output_path: str, model_metadata: Optional[Dict] = None) -> Dict:
        dek = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        encrypted_dek = self.kms_client.encrypt(
            KeyId=self.kms_key_id,
            Plaintext=dek,
            EncryptionContext=model_metadata or {},
        )["CiphertextBlob"]
        plaintext = Path(model_path).read_bytes()
        aesgcm = AESGCM(dek)
        aad = json.dumps(model_metadata or {}).encode()
        ciphertext = aesgcm.encrypt(nonce, plaintext, aad)
        envelope = {
            "version": 1,
            "kms_key_id": self.kms_key_id,
            "encrypted_dek": base64.b64encode(encrypted_dek).decode(),
            "nonce": base64.b64encode(nonce).decode(),
            "metadata": model_metadata or {},
            "plaintext_hash": __import__("hashlib").sha256(plaintext).hexdigest(),
        }
        envelope_bytes = json.dumps(envelope).encode()
        with open(output_path, "wb") as f:
            f.write(b"ENVMODEL")
            f.write(len(envelope_bytes).to_bytes(4, "big"))
            f.write(envelope_bytes)
            f.write(ciphertext)
        dek = b"\x00" * len(dek)
        return {"plaintext_size": len(plaintext), "ciphertext_size": len(ciphertext), "kms_key_id": self.kms_key_id}

    def decrypt_model(self, encrypted_path: str, output_path: str) -> Dict:
        with open(encrypted_path, "rb") as f:
            magic = f.read(8)
            if magic != b"ENVMODEL":
                raise ValueError("Not an envelope-encrypted model file")
            envelope_size = int.from_bytes(f.read(4), "big")
            envelope = json.loads(f.read(envelope_size))
            ciphertext = f.read()
        encrypted_dek = base64.b64decode(envelope["encrypted_dek"])
        dek = self.kms_client.decrypt(
            CiphertextBlob=encrypted_dek,
            EncryptionContext=envelope.get("metadata", {}),
        )["Plaintext"]
        nonce = base64.b64decode(envelope["nonce"])
        aad = json.dumps(envelope.get("metadata", {})).encode()
        aesgcm = AESGCM(dek)
        plaintext = aesgcm.decrypt(nonce, ciphertext, aad)
        actual_hash = __import__("hashlib").sha256(plaintext).hexdigest()
        if actual_hash != envelope.get("plaintext_hash"):
            raise ValueError("Integrity check failed")
        Path(output_path).write_bytes(plaintext)
        return {"size": len(plaintext)}


def kms_client():
    # The test fixture blanks AWS settings it does not use ("" = unset for hmodctl); boto3
    # would take AWS_PROFILE="" as a profile named "".
    for name in [k for k, v in os.environ.items() if k.startswith("AWS_") and not v]:
        del os.environ[name]
    import boto3

    return boto3.client(
        "kms",
        endpoint_url=os.environ["AWS_ENDPOINT_URL_KMS"],
        region_name=os.environ.get("AWS_REGION") or "us-east-1",
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    )


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["encmodel", "envmodel", "decrypt-encmodel", "decrypt-envmodel"])
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--key-file")
    p.add_argument("--aad")
    p.add_argument("--key-id")
    p.add_argument("--meta", action="append", default=[])
    a = p.parse_args()
    aad = a.aad.encode() if a.aad is not None else None
    if a.mode in ("encmodel", "decrypt-encmodel"):
        key = Path(a.key_file).read_bytes()
        assert len(key) == 32, "raw 32-byte key expected"
        enc = ModelEncryptor(key=key)
        if a.mode == "encmodel":
            r = enc.encrypt_file(a.input, a.output, associated_data=aad)
        else:
            r = enc.decrypt_file(a.input, a.output, associated_data=aad)
    else:
        meta = {}
        for kv in a.meta:
            k, _, v = kv.partition("=")
            meta[k] = v
        enc = EnvelopeEncryptor(kms_client(), a.key_id or "")
        if a.mode == "envmodel":
            r = enc.encrypt_model(a.input, a.output, model_metadata=meta or None)
        else:
            r = enc.decrypt_model(a.input, a.output)
    json.dump(r, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
