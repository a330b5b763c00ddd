"""Running Fangpin: the embedded stack, the CLI and the real test servers."""
