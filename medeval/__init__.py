"""medeval: reproducible evaluation of medical language models."""
__version__ = "0.1.0"
RESULTS_SCHEMA_VERSION = 1
