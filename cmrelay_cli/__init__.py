"""The `cmrelay` command: the top floor, which imports every part it can start or inspect."""
