"""Small helpers shared by the entrypoints and the library."""
