"""Check the students' network settings against each other and this host's routes; print the problems as JSON.

    python check_network.py SUBNET GATEWAY HUB_IP IP_RANGE BRIDGE

A subnet that overlaps a route this host already has (the campus network, a VPN,
another Docker network) would make those addresses unreachable from students'
servers, or the network would not be created at all. Routes through BRIDGE (the
classroom's own network, from an earlier deploy) are ours. Prints a JSON list.
"""
import ipaddress
import json
import shutil
import subprocess
import sys


def problems(subnet: str, gateway: str, hub_ip: str, ip_range: str, bridge: str) -> list[str]:
    try:
        net = ipaddress.ip_network(subnet)
    except ValueError as error:
        return [f"hub_subnet: {subnet} is not a network ({error})"]
    found = []
    for name, value in (("hub_gateway", gateway), ("hub_ip", hub_ip)):
        try:
            if ipaddress.ip_address(value) not in net:
                found.append(f"{name}: {value} is not in hub_subnet {subnet}")
        except ValueError:
            found.append(f"{name}: {value} is not an IP address")
    try:
        pool = ipaddress.ip_network(ip_range)
        if not pool.subnet_of(net):
            found.append(f"hub_ip_range: {ip_range} is not inside hub_subnet {subnet}")
        elif ipaddress.ip_address(hub_ip) in pool:
            found.append(f"hub_ip_range: {ip_range} must leave out hub_ip {hub_ip} (students' addresses come from it)")
    except (ValueError, TypeError) as error:
        found.append(f"hub_ip_range: {ip_range} is not a network inside hub_subnet ({error})")
    for route in host_routes():
        if route.get("dst") == "default" or route.get("dev") == bridge:
            continue
        try:
            other = ipaddress.ip_network(route["dst"], strict=False)
        except (KeyError, ValueError):
            continue
        if other.version == net.version and other.overlaps(net):
            found.append(f"hub_subnet: {subnet} overlaps {other} on this host (device {route.get('dev', '?')}); "
                         "set hub_subnet, hub_gateway, hub_ip and hub_ip_range to a free range")
    return found


def host_routes() -> list[dict]:
    if not shutil.which("ip"):
        return []
    listed = subprocess.run(["ip", "-j", "-4", "route", "show"], capture_output=True, text=True)
    return json.loads(listed.stdout or "[]") if listed.returncode == 0 else []


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    print(json.dumps(problems(*sys.argv[1:])))
