"""Evidence bundles (pure): build one from values, verify one offline.  ``bundle`` holds the format."""

from .bundle import FORMAT, Check, assemble, digest_part, dumps, find_record, key_part, log_file_part, summary, verify

__all__ = ["FORMAT", "Check", "assemble", "digest_part", "dumps", "find_record", "key_part", "log_file_part",
           "summary", "verify"]
