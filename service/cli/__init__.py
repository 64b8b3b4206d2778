"""The `review-router` command: one module per group of subcommands; `main` builds the parser."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_DATA = REPO_ROOT / "data" / "halueval" / "general_data.jsonl.gz"
