"""What the CLI and the HTTP API do to onboardings, written once: start one from a deal, send a
person's action or a system's fact, read where one is, list them. Each caller turns the
answers and the refusals (service/errors.py) into its own form: lines and exit codes, or HTTP
statuses and JSON; the words are the same."""
