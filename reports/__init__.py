"""Reports over the project's database (read model), for CS leadership."""
