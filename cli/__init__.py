"""The command line (starter.py), one module per group of commands; app.py is shared."""
