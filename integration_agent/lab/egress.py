"""What a sandbox host tries to reach: a packet recorder inside its network namespace.

The sandbox host's namespace routes every address outside the lab bridge into ``sink``, one end of a
veth pair whose other end (in the same namespace) drops what it is given: a connection attempt to the
outside never leaves the namespace, whatever the plan does. The recorder (this module run as
``python -m ... record FILE`` inside the namespace) sees every outgoing packet on every interface of the
namespace and writes one JSON line per new destination: connection attempts (TCP SYN, UDP, ICMP) to
anything but the lab mirror, on the bridge, into the sink, or to loopback (TCP only: the host's own
services).
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

SINK, SINK_PEER = "sink", "sink-peer"
ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp"}
TCP_SYN, TCP_ACK = 0x02, 0x10


@dataclass(frozen=True, order=True)
class Attempt:
    """One destination the host tried to reach."""

    interface: str
    protocol: str
    address: str
    port: int | None

    def __str__(self) -> str:
        where = f"{self.address}:{self.port}" if self.port is not None else self.address
        return f"{self.protocol} to {where} (via {self.interface})"


def classify(interface: str, packet: bytes) -> Attempt | None:
    """The connection attempt an outgoing IPv4 packet is, or None (replies, established flows, others)."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    header = (packet[0] & 0x0F) * 4
    protocol = PROTOCOLS.get(packet[9])
    if protocol is None:
        return None
    address = socket.inet_ntoa(packet[16:20])
    body = packet[header:]
    port = None
    if protocol in ("tcp", "udp") and len(body) >= 4:
        port = struct.unpack("!H", body[2:4])[0]
    if protocol == "tcp":
        if len(body) < 14 or (body[13] & (TCP_SYN | TCP_ACK)) != TCP_SYN:
            return None  # only the first packet of a connection the host opens
    elif interface == "lo":
        return None  # loopback: the host's own TCP services only
    if protocol == "icmp" and (not body or body[0] != 8):
        return None  # echo requests only (not the errors the host sends back)
    return Attempt(interface, protocol, address, port)


def record(out: Path) -> None:
    """Record attempts into ``out`` (JSON lines, each destination once) until SIGTERM."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    seen: set[Attempt] = set()
    with open(out, "a", buffering=1) as fh:
        fh.write(json.dumps({"ready": True}) + "\n")
        while True:
            packet, (interface, proto, pkttype, *_rest) = sock.recvfrom(65535)
            if pkttype != PACKET_OUTGOING or proto != ETH_P_IP:
                continue
            attempt = classify(interface, packet)
            if attempt is not None and attempt not in seen:
                seen.add(attempt)
                fh.write(json.dumps(attempt.__dict__) + "\n")


def read(path: Path) -> list[Attempt]:
    """The attempts a recorder wrote (lines it had not finished are ignored)."""
    attempts = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if "interface" in data:
            attempts.append(Attempt(**data))
    return sorted(set(attempts))


if __name__ == "__main__":  # python -m integration_agent.lab.egress record FILE
    if len(sys.argv) != 3 or sys.argv[1] != "record":
        sys.exit("usage: python -m integration_agent.lab.egress record FILE")
    record(Path(sys.argv[2]))
