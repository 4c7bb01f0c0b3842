"""Read-only probe used by the zabbix_agent role's verify entry point.

Asks a Zabbix agent for item keys the way a Zabbix server runs passive checks (one TCP connection per
key, Zabbix protocol header "ZBXD" + flags 0x01 + 8-byte little-endian length, then the key) and lists
which processes listen on the port. Prints one JSON object and always exits 0: the role decides.

usage: zabbix_passive_check.py HOST PORT KEY [KEY ...]
"""

import json
import os
import socket
import struct
import sys

HEADER = b"ZBXD\x01"
MAX_REPLY = 1 << 20


def ask(host, port, key, timeout=5.0):
    """One passive check: the agent's reply to KEY, or why there is none."""
    result = {"key": key}
    data = b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            result["source"] = sock.getsockname()[0]
            payload = key.encode()
            sock.sendall(HEADER + struct.pack("<Q", len(payload)) + payload)
            while len(data) < MAX_REPLY:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        if not data:
            result.update(status="error", error=f"{type(exc).__name__}: {exc}")
            return result
    if not data:
        result.update(status="rejected",
                      error="the agent closed the connection without a reply: the source address "
                            f"{result.get('source')} is not allowed by Server=")
    elif data[:4] == b"ZBXD" and len(data) >= 13:
        length = struct.unpack("<Q", data[5:13])[0]
        value = data[13:13 + length].decode("utf-8", "replace")
        if value.startswith("ZBX_NOTSUPPORTED"):
            result.update(status="notsupported", error=value.replace("\0", ": ").rstrip(": "))
        else:
            result.update(status="ok", value=value)
    else:
        result.update(status="bad-reply", error=f"not a Zabbix agent reply: {data[:60]!r}")
    return result


def listeners(port):
    """Processes with a TCP socket in LISTEN state on PORT, from /proc (needs root to see every process)."""
    inodes = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    local, state, inode = fields[1], fields[3], fields[9]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes[f"socket:[{inode}]"] = local.rsplit(":", 1)[0]
        except OSError:
            continue
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    with open(f"/proc/{pid}/comm") as handle:
                        found[int(pid)] = handle.read().strip()
                    break
        except OSError:
            continue
    return {"sockets": len(inodes), "processes": sorted(set(found.values())), "pids": sorted(found)}


def main(argv):
    host, port, keys = argv[1], int(argv[2]), argv[3:]
    report = {"host": host, "port": port, "listeners": listeners(port),
              "checks": {key: ask(host, port, key) for key in keys}}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
