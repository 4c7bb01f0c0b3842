"""The lab network: one bridge on the controller, one network namespace and veth pair per host.

Addresses come from a private subnet that exists only on the bridge; a blackhole route for the
subnet makes sure nothing addressed to it can leave the machine even while the bridge is down.
Hosts get no default route, so they can reach the bridge and each other, nothing else.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from ..errors import LabError
from .system import ok, run

BRIDGE = "iagbr0"
NETNS_PREFIX = "intagent-"
VETH_PREFIX = "iagv"
ROUTE_METRIC = "4242"
FIRST_HOST_OFFSET = 10  # host i gets the subnet's address number 10 + i


def gateway(subnet: IPv4Network) -> IPv4Address:
    """The controller's address on the bridge."""
    return subnet.network_address + 1


def host_address(subnet: IPv4Network, index: int) -> IPv4Address:
    address = subnet.network_address + FIRST_HOST_OFFSET + index
    if address >= subnet.broadcast_address:
        raise LabError(f"subnet {subnet} has no room for lab host {index}")
    return address


def ensure_bridge(subnet: IPv4Network) -> None:
    if not ok(["ip", "link", "show", BRIDGE]):
        run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    addr = f"{gateway(subnet)}/{subnet.prefixlen}"
    if addr not in run(["ip", "-o", "addr", "show", "dev", BRIDGE]).stdout:
        run(["ip", "addr", "add", addr, "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])
    # Lower priority than the bridge's own route, so it only acts when the bridge is gone.
    run(["ip", "route", "replace", "blackhole", str(subnet), "metric", ROUTE_METRIC])


def ensure_host_link(netns: str, veth: str, address: IPv4Address, subnet: IPv4Network) -> None:
    """Create (or re-create) the host's namespace with ``eth0`` plugged into the bridge."""
    remove_host_link(netns, veth, address)
    run(["ip", "netns", "add", netns])
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns])
    run(["ip", "link", "set", veth, "master", BRIDGE, "up"])
    run(["ip", "-n", netns, "addr", "add", f"{address}/{subnet.prefixlen}", "dev", "eth0"])
    run(["ip", "-n", netns, "link", "set", "eth0", "up"])
    run(["ip", "-n", netns, "link", "set", "lo", "up"])


def remove_host_link(netns: str, veth: str, address: IPv4Address | str | None = None) -> None:
    if ok(["ip", "link", "show", veth]):
        run(["ip", "link", "del", veth], check=False)
    if netns in list_netns():
        run(["ip", "netns", "del", netns], check=False)
    if address is not None and ok(["ip", "link", "show", BRIDGE]):
        # A stale neighbour entry for a re-created host stalls connections for about 20 s.
        run(["ip", "neigh", "flush", "to", str(address), "dev", BRIDGE], check=False)


def list_netns() -> list[str]:
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def lab_netns() -> list[str]:
    return [name for name in list_netns() if name.startswith(NETNS_PREFIX)]


def lab_links() -> list[str]:
    out = run(["ip", "-o", "link", "show"], check=False).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]
    return [n for n in names if n == BRIDGE or n.startswith(VETH_PREFIX)]


def lab_routes() -> list[str]:
    """The blackhole routes the lab installed (recognised by their metric)."""
    out = run(["ip", "route", "show", "type", "blackhole"], check=False).stdout
    return [line.split()[1] for line in out.splitlines() if f"metric {ROUTE_METRIC}" in line]


def remove_network() -> None:
    """Delete every namespace, link and route the lab made, whether or not its state file survived."""
    for netns in lab_netns():
        run(["ip", "netns", "del", netns], check=False)
    for link in lab_links():
        run(["ip", "link", "del", link], check=False)
    for prefix in lab_routes():
        run(["ip", "route", "del", "blackhole", prefix, "metric", ROUTE_METRIC], check=False)
