"""The HTTP API: the intake other systems feed, and the reads and actions of people's tools."""
