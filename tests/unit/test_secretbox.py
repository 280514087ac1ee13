from __future__ import annotations

import pytest

from optria.secretbox import SecretBox, SecretBoxError


def test_roundtrip_and_binding() -> None:
    box = SecretBox(b"k" * 32)
    sealed = box.seal("p@ss", context="tenant-a")
    assert "p@ss" not in sealed and sealed.startswith("v2:")
    assert box.open(sealed, context="tenant-a") == "p@ss"
    with pytest.raises(SecretBoxError):
        box.open(sealed, context="tenant-b")
    with pytest.raises(SecretBoxError):
        SecretBox(b"other" * 8).open(sealed, context="tenant-a")
    assert box.seal("x", context="c") != box.seal("x", context="c")  # fresh nonce each time


def test_dicts() -> None:
    box = SecretBox(b"k" * 32)
    sealed = box.seal_dict({"password": "pw", "empty": ""}, context="t1:int1")
    assert set(sealed) == {"password"}
    assert box.open_dict(sealed, context="t1:int1") == {"password": "pw"}
