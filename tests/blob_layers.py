"""The stores a blob store is made of (a fallback store's primary and older ones), for tests
that look at what each of them holds."""

from __future__ import annotations

from registry.kernel.blob_store import BlobStore, FallbackBlobs


def layers(store: BlobStore) -> list[BlobStore]:
    """Every plain store within `store` (itself when it is one)."""
    found: list[BlobStore] = []
    stores = [store]
    while stores:
        current = stores.pop()
        if isinstance(current, FallbackBlobs):
            stores += [current.primary, current.older]
        else:
            found.append(current)
    return found
