"""``audiovis`` command-line tools, one module each with ``main(argv) -> int``."""
