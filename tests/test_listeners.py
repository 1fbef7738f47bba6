"""The addresses of /proc/net/tcp and tcp6 as text, as the ipaddress module writes them."""

from __future__ import annotations

import ipaddress
import random

import pytest

from o2cb_init.listeners import _address


def kernel_column(packed: bytes) -> str:
    """The address as /proc/net/tcp* shows it: 32-bit words in little-endian order."""
    return b"".join(packed[i:i + 4][::-1] for i in range(0, len(packed), 4)).hex().upper()


@pytest.mark.parametrize("text", [
    "127.0.0.1", "0.0.0.0", "10.9.9.2", "255.255.255.255",
    "::", "::1", "fe80::1", "2001:db8::8:800:200c:417a", "2001:db8:0:0:1:0:0:1",
    "1:0:0:2::3", "ff02::1:ff00:1",
])
def test_addresses_read_as_ipaddress_writes_them(text: str) -> None:
    address = ipaddress.ip_address(text)
    assert _address(kernel_column(address.packed)) == str(address)


def test_random_ipv6_addresses_read_as_ipaddress_writes_them() -> None:
    rng = random.Random(5952)
    for _ in range(5000):
        words = [rng.choice((0, 0, 1, rng.randrange(1 << 16))) for _ in range(8)]
        address = ipaddress.IPv6Address(b"".join(w.to_bytes(2, "big") for w in words))
        if address.ipv4_mapped is None:
            assert _address(kernel_column(address.packed)) == str(address)


def test_a_v4_mapped_address_reads_as_the_ipv4_address_it_maps() -> None:
    packed = ipaddress.IPv6Address("::ffff:10.0.0.1").packed
    assert _address(kernel_column(packed)) == "::ffff:10.0.0.1"
