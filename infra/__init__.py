"""What the processes share outside workflow code: settings, the database, logging, the CSM
roster store and search-attribute registration."""
