"""Things printed for the counter and the notice board: QR codes."""
