"""The runbook's entry point (`python -m lynx.main`) for the Rust Lynx server."""
