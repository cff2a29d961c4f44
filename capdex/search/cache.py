"""A small thread-safe LRU of query text → query embedding, so repeated queries skip the model."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np


class QueryCache:
    """Least-recently-used embeddings of recent queries; size 0 disables it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, query: str) -> np.ndarray | None:
        with self._lock:
            vector = self._items.get(query)
            if vector is None:
                self.misses += 1
                return None
            self._items.move_to_end(query)
            self.hits += 1
            return vector

    def put(self, query: str, vector: np.ndarray) -> None:
        if self.size <= 0:
            return
        vector = np.array(vector, dtype=np.float32)  # a private copy nobody can change
        vector.flags.writeable = False
        with self._lock:
            self._items[query] = vector
            self._items.move_to_end(query)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
