"""Runtime subcommands of the calcsdk CLI (one module each)."""
