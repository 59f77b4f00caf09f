"""Workflow code: decisions only, deterministic, no I/O. The names other systems use are in
`workflows.contract`."""
