"""The numbers for officials: periods, the SIPAS index, its renderings (text, JSON, CSV,
XLSX), the export of every survey, digests and low-score alerts."""
