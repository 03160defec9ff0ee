"""The operator's side: per-room publish figures shared across workers, per-room metrics at scrape time,
and `spillway status` (docs/operations.md)."""
