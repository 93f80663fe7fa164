"""The history store of checkpoints (docs/history.md): store.py (SQLAlchemy Core: SQLite or PostgreSQL),
query.py (a task's series, the item ledger, `history:` gate baselines), page.py (the trend page), cli.py
(`medeval history ...`). It reads result directories only, like reporting."""
