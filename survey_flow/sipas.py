"""The five SIPAS factors (Bộ Nội vụ, QĐ 1001/QĐ-BNV), by number, in both languages."""

from __future__ import annotations

# A factor rated 1 or 2 is a low rating: it alerts the unit's leaders.
LOW_RATINGS = frozenset({1, 2})

FACTORS: dict[int, dict[str, str]] = {
    1: {"vi": "Tiếp cận dịch vụ", "en": "Access to the service"},
    2: {"vi": "Thủ tục hành chính", "en": "Administrative procedures"},
    3: {"vi": "Công chức giải quyết công việc", "en": "The civil servant"},
    4: {"vi": "Kết quả giải quyết", "en": "The result"},
    5: {"vi": "Tiếp nhận, xử lý góp ý", "en": "Handling of feedback"},
}

# Criteria per factor in the Ministry's 2022 form (19 criteria, numbered across factors).
CRITERIA_BY_FACTOR: dict[int, range] = {
    1: range(1, 5),
    2: range(5, 9),
    3: range(9, 14),
    4: range(14, 17),
    5: range(17, 20),
}
