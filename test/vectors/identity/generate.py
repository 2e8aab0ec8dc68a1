#!/usr/bin/env python3
"""Writes bip39-ed25519-onion.json (run from the repo root: python3 test/vectors/identity/generate.py).

Independent of src/ and of Node: BIP39 (entropy -> words, PBKDF2-HMAC-SHA512 seed) with Python's hashlib,
the Ed25519 public key with the openssl command line, the v3 onion with hashlib's SHA3-256 and base64's base32.
Before writing anything it checks each of those three against published values:
  - bip39-english.txt is the BIP39 English list (its SHA-256 below, as published with BIP39);
  - entropy -> words and the seed match the trezor/python-mnemonic reference vectors (passphrase "TREZOR");
  - openssl gives RFC 8032 section 7.1's public keys (rfc8032.json);
  - the onion encoding round-trips the rend-spec-v3 section 6 example addresses (onion-examples.json).
Every mmogit vector uses the empty passphrase and the first 32 seed bytes as the Ed25519 secret (the
RCALabs/mmogit derivation). Needs python3 >= 3.6 and openssl >= 1.1.1 only.
"""

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORDLIST_SHA256 = "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda"

# trezor/python-mnemonic vectors.json, English entries (entropy, phrase, seed with passphrase "TREZOR"),
# https://github.com/trezor/python-mnemonic/blob/master/vectors.json — one per length we take from it.
TREZOR = [
    (
        "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f",
        "legal winner thank year wave sausage worth useful legal winner thank yellow",
        "2e8905819b8723fe2c1d161860e5ee1830318dbf49a83bd451cfb8440c28bd6fa457fe1296106559a3c80937a1c1069be3a3a5bd381ee6260e8d9739fce1f607",
    ),
    (
        "808080808080808080808080808080808080808080808080",
        "letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic avoid letter always",
        "107d7c02a5aa6f38c58083ff74f04c607c2d2c0ecc55501dadd72d025b751bc27fe913ffb796f841c49b1d33b610cf0e91d3aa239027f5e99fe4ce9e5088cd65",
    ),
    (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art",
        "bda85446c68413707090a52022edd26a1c9462295029f2e60cd7c4f2bbd3097170af7a4d73245cafa9c3cca8d561a7c3de6f5d4a10be8ed2a5e608d68f92fcc8",
    ),
]

# The entropies of the vectors we write: the three 24-word ones first (their order is relied on), then one set
# per shorter length. 12/18/24-word entropies are those of the reference vectors; 15 and 21 words (160 and 224
# bits), which the reference vectors lack, use the same byte patterns.
PATTERNS = ["00", "7f", "80"]
ENTROPY_BYTES = {24: 32, 12: 16, 15: 20, 18: 24, 21: 28}


def die(msg):
    sys.stderr.write("generate.py: %s\n" % msg)
    sys.exit(1)


def load_wordlist():
    raw = (HERE / "bip39-english.txt").read_bytes()
    if hashlib.sha256(raw).hexdigest() != WORDLIST_SHA256:
        die("bip39-english.txt is not the BIP39 English wordlist")
    words = raw.decode("ascii").split("\n")[:-1]
    if len(words) != 2048:
        die("wordlist has %d words" % len(words))
    return words


def entropy_to_phrase(entropy, words):
    # BIP39 "Generating the mnemonic": entropy || first ENT/32 bits of SHA-256(entropy), in 11-bit groups.
    ent_bits = len(entropy) * 8
    cs_bits = ent_bits // 32
    value = int.from_bytes(entropy, "big") << cs_bits | hashlib.sha256(entropy).digest()[0] >> (8 - cs_bits)
    count = (ent_bits + cs_bits) // 11
    return " ".join(words[(value >> (11 * (count - 1 - i))) & 0x7FF] for i in range(count))


def bip39_seed(phrase, passphrase=""):
    # BIP39 "From mnemonic to seed" (the phrases here are ASCII, so NFKD changes nothing).
    return hashlib.pbkdf2_hmac("sha512", phrase.encode(), ("mnemonic" + passphrase).encode(), 2048)


def ed25519_public(secret32):
    # RFC 8410 PKCS#8 wrapper around the 32-byte secret; openssl prints the SPKI, whose last 32 bytes are the key.
    pkcs8 = bytes.fromhex("302e020100300506032b657004220420") + secret32
    spki = subprocess.run(
        ["openssl", "pkey", "-inform", "DER", "-pubout", "-outform", "DER"],
        input=pkcs8,
        stdout=subprocess.PIPE,
        check=True,
    ).stdout
    if len(spki) != 44 or spki[:12] != bytes.fromhex("302a300506032b6570032100"):
        die("unexpected SPKI from openssl")
    return spki[12:]


def onion(pk):
    # rend-spec-v3 section 6: base32(PUBKEY || CHECKSUM || VERSION), CHECKSUM = SHA3-256(".onion checksum" ||
    # PUBKEY || VERSION)[:2], VERSION = 3.
    checksum = hashlib.sha3_256(b".onion checksum" + pk + b"\x03").digest()[:2]
    return base64.b32encode(pk + checksum + b"\x03").decode().lower() + ".onion"


def self_checks(words):
    for entropy, phrase, seed in TREZOR:
        if entropy_to_phrase(bytes.fromhex(entropy), words) != phrase:
            die("entropy -> words disagrees with the reference vector for %s" % entropy)
        if bip39_seed(phrase, "TREZOR").hex() != seed:
            die("seed disagrees with the reference vector for %s" % entropy)
    for v in json.loads((HERE / "rfc8032.json").read_text())["vectors"]:
        if ed25519_public(bytes.fromhex(v["secretKeyHex"])).hex() != v["publicKeyHex"]:
            die("openssl disagrees with RFC 8032 %s" % v["name"])
    for addr in json.loads((HERE / "onion-examples.json").read_text())["valid"]:
        if onion(base64.b32decode(addr[:56].upper())[:32]) != addr:
            die("onion encoding does not round-trip %s" % addr)


def main():
    words = load_wordlist()
    self_checks(words)
    vectors = []
    for count, size in ENTROPY_BYTES.items():
        for pattern in PATTERNS:
            entropy = bytes.fromhex(pattern * size)
            phrase = entropy_to_phrase(entropy, words)
            seed = bip39_seed(phrase)
            pk = ed25519_public(seed[:32])
            vectors.append(
                {
                    "words": count,
                    "entropyHex": entropy.hex(),
                    "mnemonic": phrase,
                    "bip39SeedHex": seed.hex(),
                    "ed25519PublicKeyHex": pk.hex(),
                    "onion": onion(pk),
                }
            )
    out = {
        "source": (
            "test/vectors/identity/generate.py: BIP39 words and seed (empty passphrase) with Python hashlib, "
            "Ed25519 public key of seed[0:32] with openssl, onion with hashlib SHA3-256 + base32 "
            "(rend-spec-v3 section 6); each step first checked against the trezor/python-mnemonic vectors, "
            "RFC 8032 section 7.1 and rend-spec-v3's example addresses. Independent of src/ and of Node."
        ),
        "vectors": vectors,
    }
    sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
