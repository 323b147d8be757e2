"""The export file's way from storage to the reader: fetched, proven whole, spooled unnamed.

``fetch`` downloads the pre-signed URL with resumption and retries, ``integrity`` proves the
file whole (MD5 against storage's ETag, the gzip stream to its end), ``storage`` keeps
credentials and signatures away from the storage host and the log, ``spool`` holds the file
on disk without a name, and ``background`` runs the download in a thread of its own while the
stream reads the file behind it.
"""
