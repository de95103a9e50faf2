# SPDX-License-Identifier: GPL-2.0
"""Byte sizes with K/M/G/T suffixes (binary), as QEMU writes them."""

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text):
    """'512M' -> 536870912, '0x30000000' -> 805306368. Raises ValueError on anything else."""
    t = str(text).strip().upper().removesuffix("IB")
    if t.startswith("0X"):
        try:
            return int(t, 16)
        except ValueError:
            raise ValueError(f"not a size: {text!r}") from None
    num = t.rstrip("KMGTB")
    unit = t[len(num):]
    if not num or unit not in _UNITS:
        raise ValueError(f"not a size: {text!r}")
    value = float(num) * _UNITS[unit]
    if value < 0 or value != int(value):
        raise ValueError(f"not a whole number of bytes: {text!r}")
    return int(value)


def fmt_size(n):
    for unit in ("T", "G", "M", "K"):
        if n and n % _UNITS[unit] == 0:
            return f"{n // _UNITS[unit]}{unit}"
    return str(n)
