#!/usr/bin/env python3
"""Install an OpenPGP public key as a binary apt keyring, like ``gpg --dearmor`` but without gpg.

Usage: dearmor_key.py SRC DEST

SRC is ASCII-armored ("-----BEGIN PGP PUBLIC KEY BLOCK-----") or already binary. Armored input is decoded
(armor checksum checked), binary input is copied as it is; either way the result must start with an OpenPGP
public-key packet. DEST is written (mode 0644, atomically) only when its content or mode differ. Prints
"changed" or "unchanged"; exits 1 with a message on bad input.
"""
import base64
import binascii
import os
import stat
import sys
import tempfile


def crc24(data):
    crc = 0xB704CE
    for byte in bytearray(data):
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def dearmor(text):
    lines = iter(text.splitlines())
    out = b""
    blocks = 0
    for line in lines:
        if not line.strip().startswith("-----BEGIN PGP PUBLIC KEY BLOCK"):
            continue
        blocks += 1
        body, checksum, in_headers, ended = [], None, True, False
        for raw in lines:
            line = raw.strip()
            if line.startswith("-----END PGP"):
                ended = True
                break
            if in_headers:
                if not line:
                    in_headers = False
                    continue
                if ":" in line:
                    continue  # armor header such as "Version: ..."
                in_headers = False
            if not line:
                continue
            if line.startswith("=") and len(line) == 5:
                checksum = line[1:]
                continue
            body.append(line)
        if not ended:
            raise ValueError("armored key block has no END line")
        data = base64.b64decode("".join(body).encode("ascii"), validate=True)
        if checksum is not None and base64.b64decode(checksum) != crc24(data).to_bytes(3, "big"):
            raise ValueError("armor checksum does not match")
        out += data
    if not blocks:
        raise ValueError("no 'BEGIN PGP PUBLIC KEY BLOCK' in the armored file")
    return out


def packet_tag(data):
    first = bytearray(data[:1])
    if not first or not first[0] & 0x80:
        return None
    return first[0] & 0x3F if first[0] & 0x40 else (first[0] >> 2) & 0x0F


def main(src, dest):
    with open(src, "rb") as handle:
        raw = handle.read()
    key = dearmor(raw.decode("ascii", "strict")) if raw.lstrip().startswith(b"-----BEGIN") else raw
    if packet_tag(key) != 6:
        raise ValueError("%s is not an OpenPGP public key (armored or binary)" % src)
    try:
        with open(dest, "rb") as handle:
            current = handle.read()
        mode = stat.S_IMODE(os.stat(dest).st_mode)
    except FileNotFoundError:
        current, mode = None, None
    if current == key and mode == 0o644:
        return "unchanged"
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(dest) or ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        os.chmod(tmp, 0o644)
        os.rename(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return "changed"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: dearmor_key.py SRC DEST")
    try:
        print(main(sys.argv[1], sys.argv[2]))
    except (OSError, ValueError, UnicodeDecodeError, binascii.Error) as exc:
        sys.exit("dearmor_key.py: %s" % exc)
