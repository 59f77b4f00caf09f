"""Every side effect, as idempotent activities: records (DB), assign (CSMs), notify (mail)."""
