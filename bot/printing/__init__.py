"""Things printed for the counter and the notice board: QR codes, and PDF files of the
console's print pages (the report for the notice board, the counter posters)."""
